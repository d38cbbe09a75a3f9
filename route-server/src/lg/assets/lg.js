// vixp looking glass: reads the route server's JSON API (same origin, GET only) and renders
// the view the URL names. Everything shown goes through textContent; nothing is written as HTML.
//   /                          neighbors
//   /lg/neighbors/ID?view=received|filtered|not-exported&page=N   one session's routes
//   /lg/lookup?q=PREFIX_OR_ADDRESS                                   paths for a prefix
'use strict';

const VIEWS = {
  received: {
    title: 'Accepted',
    api: 'received',
    explain: 'Routes this session sent that passed the import policy. The route server passes ' +
      'them to the other members (unless an action community restricts them).',
    empty: 'No accepted routes from this session.',
  },
  filtered: {
    title: 'Filtered',
    api: 'filtered',
    explain: 'Routes this session sent that the import policy refused, with the reason. They ' +
      'reach no other member. Fix the announcement (or the IRR/RPKI data) and the route is ' +
      'accepted as soon as it is sent again.',
    empty: 'No filtered routes: every route this session sent was accepted.',
  },
  'not-exported': {
    title: 'Not exported',
    api: 'not-exported',
    explain: 'Other members\u2019 routes this member does not receive, because their senders\u2019 ' +
      'action communities withhold them.',
    empty: 'Nothing withheld: this member receives every other member\u2019s accepted routes.',
  },
};

const PAGE_SIZE = 100;

// Builds an element; `attributes` values are set as attributes, children are nodes or text.
function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const response = await fetch(path, { headers: { Accept: 'application/json' } });
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    throw new Error(`${path}: HTTP ${response.status}, not JSON`);
  }
  if (!response.ok) {
    throw new Error(body && body.error ? body.error : `${path}: HTTP ${response.status}`);
  }
  return body;
}

function duration(seconds) {
  if (!seconds) return '\u2014';
  const parts = [];
  const units = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  let rest = seconds;
  for (const [unit, size] of units) {
    if (rest >= size || (parts.length === 0 && unit === 's')) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

function stateBadge(state) {
  const kind = state === 'Established' ? 'up' : (state === 'Idle' ? 'down' : 'connecting');
  return el('span', { class: `state state-${kind}`, 'data-state': state }, state);
}

function neighborLink(id, text, view) {
  const query = view ? `?view=${encodeURIComponent(view)}` : '';
  return el('a', { href: `/lg/neighbors/${encodeURIComponent(id)}${query}` }, text);
}

// A table whose cells carry their column name, so a phone can show each row as a card.
function table(columns, rows, className) {
  const head = el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col' }, c))));
  const body = el('tbody', {}, rows.map((row) => el('tr', { class: row.className },
    row.cells.map((cell, index) => el('td', { 'data-label': columns[index] }, cell)))));
  return el('div', { class: 'table-wrap' }, el('table', { class: className }, head, body));
}

function communities(bgp) {
  const standard = (bgp.communities || []).map(([asn, value]) => `${asn}:${value}`);
  const large = (bgp.large_communities || []).map((c) => c.join(':'));
  const all = standard.concat(large);
  return all.length ? all.join(' ') : '\u2014';
}

function asPath(bgp) {
  return bgp.as_path && bgp.as_path.length ? bgp.as_path.join(' ') : '(empty)';
}

// Replaces the content of `main`, skipping absent (null) parts.
function show(main, ...children) {
  main.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

function showError(main, message) {
  show(main, el('p', { class: 'error', role: 'alert' }, message));
}

async function header() {
  try {
    const status = await api('/api/v1/status');
    document.getElementById('exchange').textContent =
      `${status.exchange} \u00b7 route server ${status.route_server} \u00b7 v${status.version}`;
    return status;
  } catch (error) {
    document.getElementById('exchange').textContent = `status unavailable: ${error.message}`;
    return null;
  }
}

async function neighborsView(main) {
  document.title = 'Neighbors \u2014 looking glass';
  const { neighbors } = await api('/api/v1/neighbors');
  const established = neighbors.filter((n) => n.state === 'Established').length;
  const rows = neighbors.map((n) => ({
    className: n.state === 'Established' ? 'up' : 'down',
    cells: [
      neighborLink(n.id, n.member),
      `AS${n.asn}`,
      n.address,
      stateBadge(n.state),
      duration(n.uptime),
      String(n.routes_received),
      String(n.routes_accepted),
      n.routes_filtered > 0
        ? neighborLink(n.id, String(n.routes_filtered), 'filtered')
        : '0',
      String(n.routes_exported),
      n.last_error || '\u2014',
    ],
  }));
  show(main,
    el('h1', {}, 'Neighbors'),
    el('p', { class: 'summary', id: 'summary' },
      `${established} of ${neighbors.length} sessions established`),
    table(['Member', 'ASN', 'Address', 'State', 'Uptime', 'Received', 'Accepted', 'Filtered',
      'Exported', 'Last error'], rows, 'neighbors'),
  );
}

function routeRows(view, routes) {
  return routes.map((route) => {
    const common = [route.network, route.gateway, asPath(route.bgp)];
    if (view === 'filtered') {
      const why = route.filtered || {};
      return {
        className: 'filtered',
        cells: [...common, el('span', { class: 'reason' }, why.reason || 'refused'),
          el('code', {}, `${why.label || ''} (${(why.large_community || []).join(':')})`)],
      };
    }
    if (view === 'not-exported') {
      return {
        className: 'withheld',
        cells: [...common, neighborLink(route.neighbor_id, route.learnt_from),
          el('span', { class: 'reason' }, route.not_exported || 'withheld')],
      };
    }
    return {
      className: route.primary ? 'best' : '',
      cells: [...common, route.bgp.origin, route.bgp.med === null ? '\u2014' : String(route.bgp.med),
        communities(route.bgp), route.primary ? 'best' : ''],
    };
  });
}

const ROUTE_COLUMNS = {
  received: ['Prefix', 'Next hop', 'AS path', 'Origin', 'MED', 'Communities', 'Best'],
  filtered: ['Prefix', 'Next hop', 'AS path', 'Why it was filtered', 'Label (community)'],
  'not-exported': ['Prefix', 'Next hop', 'AS path', 'From', 'Why it is not exported'],
};

async function neighborView(main, id, params) {
  const view = VIEWS[params.get('view')] ? params.get('view') : 'received';
  const page = Math.max(0, parseInt(params.get('page') || '0', 10) || 0);
  const { neighbors } = await api('/api/v1/neighbors');
  const neighbor = neighbors.find((n) => n.id === id);
  if (!neighbor) {
    show(main,
      el('p', { class: 'error', role: 'alert' }, `No neighbor ${id}.`),
      el('p', {}, 'Known neighbors: ', neighbors.flatMap((n, i) =>
        [i ? ', ' : '', neighborLink(n.id, n.id)])),
    );
    return;
  }
  document.title = `${neighbor.member} (${neighbor.family}) \u2014 looking glass`;
  const siblings = neighbors.filter((n) => n.member === neighbor.member && n.id !== id);
  const facts = el('dl', { class: 'facts' },
    el('dt', {}, 'ASN'), el('dd', {}, `AS${neighbor.asn}`),
    el('dt', {}, 'Address'), el('dd', {}, neighbor.address),
    el('dt', {}, 'State'), el('dd', {}, stateBadge(neighbor.state)),
    el('dt', {}, 'Uptime'), el('dd', {}, duration(neighbor.uptime)),
    el('dt', {}, 'Routes'), el('dd', {},
      `${neighbor.routes_received} received, ${neighbor.routes_accepted} accepted, ` +
      `${neighbor.routes_filtered} filtered, ${neighbor.routes_exported} exported to it`),
    el('dt', {}, 'Last error'), el('dd', {}, neighbor.last_error || '\u2014'),
    neighbor.router_id ? [el('dt', {}, 'Router ID'), el('dd', {}, neighbor.router_id)] : null,
    neighbor.description ? [el('dt', {}, 'Description'), el('dd', {}, neighbor.description)] : null,
  );
  const counts = {
    received: neighbor.routes_accepted,
    filtered: neighbor.routes_filtered,
    'not-exported': null,
  };
  const tabs = el('nav', { class: 'tabs', 'aria-label': 'Route views' },
    Object.entries(VIEWS).map(([key, meta]) => {
      const label = counts[key] === null ? meta.title : `${meta.title} (${counts[key]})`;
      const link = neighborLink(id, label, key);
      if (key === view) link.setAttribute('aria-current', 'page');
      return link;
    }));
  show(main,
    el('h1', {}, `${neighbor.member} `, el('span', { class: 'muted' }, neighbor.family)),
    siblings.length ? el('p', { class: 'siblings' }, 'Other sessions: ',
      siblings.flatMap((n, i) => [i ? ', ' : '', neighborLink(n.id, n.id)])) : null,
    facts,
    tabs,
    el('p', { class: 'explain' }, VIEWS[view].explain),
    el('p', { class: 'muted', id: 'loading-routes' }, 'Loading routes…'),
  );
  const listing = await api(`/api/v1/neighbors/${encodeURIComponent(id)}/routes/` +
    `${VIEWS[view].api}?page=${page}&page_size=${PAGE_SIZE}`);
  document.getElementById('loading-routes').remove();
  const { pagination } = listing;
  if (listing.routes.length === 0) {
    main.append(el('p', { class: 'empty' }, VIEWS[view].empty));
    return;
  }
  main.append(table(ROUTE_COLUMNS[view], routeRows(view, listing.routes), `routes ${view}`));
  if (pagination.total_pages > 1) {
    const pageLink = (number, text) => el('a', {
      href: `/lg/neighbors/${encodeURIComponent(id)}?view=${view}&page=${number}`,
    }, text);
    main.append(el('nav', { class: 'pages', 'aria-label': 'Pages' },
      pagination.page > 0 ? pageLink(pagination.page - 1, '\u2190 previous') : null,
      el('span', {}, ` page ${pagination.page + 1} of ${pagination.total_pages} ` +
        `(${pagination.total_results} routes) `),
      pagination.page + 1 < pagination.total_pages
        ? pageLink(pagination.page + 1, 'next \u2192') : null));
  }
}

async function lookupView(main, params) {
  const q = (params.get('q') || '').trim();
  document.getElementById('q').value = q;
  document.title = `${q || 'Lookup'} \u2014 looking glass`;
  if (!q) {
    show(main, el('h1', {}, 'Prefix lookup'),
      el('p', {}, 'Give a prefix (exact match) or an address (most specific prefix covering it).'));
    return;
  }
  const { routes } = await api(`/api/v1/lookup/prefix?q=${encodeURIComponent(q)}`);
  const heading = el('h1', {}, 'Lookup ', el('code', {}, q));
  if (routes.length === 0) {
    show(main, heading, el('p', { class: 'empty' },
      `No member announces a route for ${q} that the route server accepted. ` +
      'A refused route is listed under its member\u2019s \u201cFiltered\u201d view.'));
    return;
  }
  const rows = routes.map((route) => ({
    className: route.primary ? 'best' : '',
    cells: [route.network, neighborLink(route.neighbor_id, route.learnt_from), route.gateway,
      asPath(route.bgp), communities(route.bgp), route.primary ? 'best' : ''],
  }));
  show(main, heading,
    el('p', { class: 'summary' }, `${routes.length} path(s) for ${routes[0].network}`),
    table(['Prefix', 'From', 'Next hop', 'AS path', 'Communities', 'Best'], rows, 'routes lookup'));
}

async function render() {
  const main = document.getElementById('main');
  const path = window.location.pathname.replace(/\/+$/, '');
  const params = new URLSearchParams(window.location.search);
  const status = header();
  try {
    if (path.startsWith('/lg/neighbors/')) {
      await neighborView(main, decodeURIComponent(path.slice('/lg/neighbors/'.length)), params);
    } else if (path === '/lg/lookup') {
      await lookupView(main, params);
    } else {
      await neighborsView(main);
    }
  } catch (error) {
    showError(main, `Cannot load this view: ${error.message}`);
  }
  await status;
  // Whether the page needs sideways scrolling at this window width (it must not, on a phone).
  const fits = document.documentElement.scrollWidth <= window.innerWidth &&
    [...document.querySelectorAll('.table-wrap')].every((wrap) => wrap.scrollWidth <= wrap.clientWidth);
  document.body.setAttribute('data-fits-width', String(fits));
  document.body.setAttribute('data-ready', 'true');
}

document.addEventListener('DOMContentLoaded', render);
