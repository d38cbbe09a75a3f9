//! The guides run: every command in a ```sh block of docs/join-an-exchange.md,
//! docs/run-an-exchange.md and docs/troubleshoot.md is exercised, so a guide cannot tell a
//! reader to type something that does not work.
//!
//! Two ways, chosen per block:
//! - **Run here.** A block without a marker is run line by line against a live exchange (the
//!   whole-exchange harness: `vixp up` nodes on an underlay bridge, our route server, BIRD
//!   members configured from `vixp router-config bird`), in the namespace of the host the
//!   guide is written for, after the small rewrite in [`REWRITES`]. A line must exit 0, or
//!   non-zero when its comment says it `fails`. The long-running commands (`vixp up`,
//!   `route-server run`) are not started twice: a process of the exchange must be running with
//!   exactly that command line.
//! - **Exercised elsewhere.** A block right after `<!-- exercised-by: FILE::FUNCTION, ... -->`
//!   is not run here (ansible, a second route server, an IRR server): every named function must
//!   exist, one of them must be a test, and the named files must hold the block's programs,
//!   subcommands and flags.
//!
//! Either way every command of our binaries is first given to the binary itself with `--help`
//! appended, so clap refuses a renamed or removed subcommand, flag or value. A program that is
//! neither run here ([`RUN_HERE`]) nor in a marked block fails the check.
//!
//! The node-file examples (```yaml) of the member's guide must pass `vixp check` on the live
//! exchange too, and every relative link of the guides must reach a file and heading.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use vixp_tests::{
    FabricExchange, FabricMember, Netns, TempDir, binary_path,
    exchange::{lan_ipv4, lan_ipv6},
    fabric_exchange::{ROUTE_SERVER_RUNTIME_DIR, underlay_ipv4},
    vixp_node::keygen,
    workspace_root,
};

/// The guides and the host each is written for: its `/etc/vixp/node.yaml` is that node's file.
const GUIDES: [(&str, &str); 3] = [
    ("docs/join-an-exchange.md", "alpha"),
    ("docs/run-an-exchange.md", "rs1"),
    ("docs/troubleshoot.md", "alpha"),
];

/// Programs the live test runs (ours, and what a reader runs next to them on the same host).
const RUN_HERE: [&str; 9] = [
    "vixp",
    "route-server",
    "curl",
    "ping",
    "birdc",
    "wg",
    "b2sum",
    "grep",
    "head",
];

/// Shell builtins that change nothing by themselves (allowed in marked blocks).
const BUILTINS: [&str; 1] = ["cd"];

/// The rewrite from a guide's command line to the one the live test runs; nothing else changes.
///
/// | in the guide | in the test |
/// |---|---|
/// | `/etc/vixp/fabric.yaml` | the exchange's fabric file |
/// | `/etc/vixp/node.yaml` | the node file of the guide's host (see [`GUIDES`]) |
/// | `/etc/vixp/private.key` | that node's key; as `vixp keygen --output`, a file in an empty scratch directory (keygen never overwrites) |
/// | `/run/vixp-route-server` (the route server's runtime directory, its control socket) | the exchange route server's runtime directory |
/// | an option of ours left out whose `[default: ...]` in `--help` is one of those paths | the option, added with the path above (not `--config` next to `--fabric`, which stands instead of it) |
/// | `https://lg.example.net` (the URL operators give members) | `http://127.0.0.1:9179`, the route server's HTTP listener, asked on its host |
/// | `curl` | `curl --fail` (an HTTP error fails the line) |
/// | `birdc` | `birdc -s SOCKET` of the host's BIRD |
/// | the target of `>` | a file of that name in the scratch directory (`<` reads the paths above) |
const REWRITES: [(&str, &str); 1] = [("https://lg.example.net", "http://127.0.0.1:9179")];

/// The route server's default runtime directory (its control socket for `route-server reload`).
const RUNTIME_DIR: &str = "/run/vixp-route-server";

/// The guide whose member-adding reload must add [`NEW_MEMBER`].
const RUN: &str = "docs/run-an-exchange.md";

/// The member the live test adds to the fabric file before the operator's guide reloads it.
const NEW_MEMBER: &str = "charlie";

/// The guide whose filtered-route commands must show a refused route.
const TROUBLESHOOT: &str = "docs/troubleshoot.md";

/// Alpha's IPv6 customer network, which the live test's policy refuses before the
/// troubleshooting guide runs (prefix lengths up to /47), so its filtered views are not empty.
const REFUSED_ROUTE: &str = "fd00:131::/48";

/// How long a policy reload may take to show a route as filtered.
const RELOAD: Duration = Duration::from_secs(15);

/// BGP sessions come up within a connect retry or two once the tunnels have their handshakes.
const ESTABLISH: Duration = Duration::from_secs(40);

/// The members of the live exchange; alpha is the reader of the member guides.
fn members() -> Vec<FabricMember> {
    vec![
        FabricMember::new("alpha", 64501, 11),
        FabricMember::new("bravo", 64502, 12),
    ]
}

// --- reading the guides ------------------------------------------------------------------------

/// A shell token: a word (quotes removed) or an operator (`|`, `&&`, `||`, `;`, `>`, `>>`, `<`,
/// `2>`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Operator(String),
}

/// One line of a ```sh block, continuations joined.
#[derive(Debug, Clone)]
struct Line {
    guide: &'static str,
    /// 1-based line number in the guide.
    number: usize,
    tokens: Vec<Token>,
    /// The comment after `#`, empty when none.
    comment: String,
}

impl Line {
    fn place(&self) -> String {
        format!("{}:{}", self.guide, self.number)
    }

    /// The simple commands of the line: argv of each, without redirections.
    fn commands(&self) -> Vec<Vec<String>> {
        let mut commands = Vec::new();
        let mut current = Vec::new();
        let mut redirect = false;
        for token in &self.tokens {
            match token {
                Token::Operator(op) if [">", ">>", "<", "2>"].contains(&op.as_str()) => {
                    redirect = true;
                }
                Token::Operator(_) => {
                    if !current.is_empty() {
                        commands.push(std::mem::take(&mut current));
                    }
                }
                Token::Word(_) if redirect => redirect = false,
                Token::Word(word) => current.push(word.clone()),
            }
        }
        if !current.is_empty() {
            commands.push(current);
        }
        commands
    }

    /// Whether the comment says the line fails (its exit status must then be non-zero).
    fn expected_to_fail(&self) -> bool {
        self.comment
            .split(|c: char| !c.is_alphanumeric())
            .any(|word| word == "fails")
    }
}

/// A ```sh block and the marker right before it.
#[derive(Debug, Clone)]
struct Block {
    guide: &'static str,
    number: usize,
    /// `FILE::FUNCTION` entries of an `<!-- exercised-by: ... -->` marker.
    exercised_by: Vec<String>,
    lines: Vec<Line>,
}

/// Splits a shell line into tokens and its comment. Supports what the guides may use: single
/// and double quotes, backslash escapes outside quotes, the operators of [`Token`]; refuses `$`
/// expansion and backquotes (a guide's command must run as written).
fn tokenize(text: &str) -> Result<(Vec<Token>, String), String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    let finish = |word: &mut String, in_word: &mut bool, tokens: &mut Vec<Token>| {
        if *in_word {
            tokens.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => {
                let comment: String = chars.collect();
                return Ok((tokens, comment.trim().to_owned()));
            }
            ' ' | '\t' => finish(&mut word, &mut in_word, &mut tokens),
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$' | '`') => return Err("no $ or ` expansion in guides".to_owned()),
                        Some('\\') => word.push(chars.next().unwrap_or('\\')),
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().unwrap_or('\\'));
            }
            '$' | '`' => return Err("no $ or ` expansion in guides".to_owned()),
            '|' | '&' | ';' | '>' | '<' => {
                let two_fd = c == '>' && in_word && word == "2";
                if two_fd {
                    word.clear();
                    in_word = false;
                } else {
                    finish(&mut word, &mut in_word, &mut tokens);
                }
                let mut op = if two_fd {
                    "2>".to_owned()
                } else {
                    c.to_string()
                };
                if matches!(
                    (c, chars.peek()),
                    ('|', Some('|')) | ('&', Some('&')) | ('>', Some('>'))
                ) {
                    op.push(chars.next().unwrap_or(c));
                }
                if op == "&" {
                    return Err("no background jobs (&) in guides".to_owned());
                }
                tokens.push(Token::Operator(op));
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    finish(&mut word, &mut in_word, &mut tokens);
    Ok((tokens, String::new()))
}

/// Every ```sh block of `guide` (relative to the workspace root), with its marker.
fn blocks(guide: &'static str) -> Result<Vec<Block>, String> {
    let path = workspace_root().join(guide);
    let text = fs::read_to_string(&path).map_err(|error| format!("{guide}: {error}"))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let fence = lines[index].trim_start();
        if !fence.starts_with("```") {
            index += 1;
            continue;
        }
        let language = fence.trim_start_matches('`').trim();
        let start = index;
        index += 1;
        let mut body = Vec::new();
        while index < lines.len() && !lines[index].trim_start().starts_with("```") {
            body.push((index + 1, lines[index]));
            index += 1;
        }
        index += 1;
        if language != "sh" {
            continue;
        }
        let exercised_by = start
            .checked_sub(1)
            .and_then(|previous| lines[previous].trim().strip_prefix("<!-- exercised-by:"))
            .and_then(|rest| rest.strip_suffix("-->"))
            .map(|list| {
                list.split(',')
                    .map(|entry| entry.trim().to_owned())
                    .filter(|entry| !entry.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut block = Block {
            guide,
            number: start + 1,
            exercised_by,
            lines: Vec::new(),
        };
        let mut pending: Option<(usize, String)> = None;
        for (number, raw) in body {
            let (first, mut joined) = pending.take().unwrap_or((number, String::new()));
            if let Some(head) = raw.trim_end().strip_suffix('\\') {
                joined.push_str(head);
                joined.push(' ');
                pending = Some((first, joined));
                continue;
            }
            joined.push_str(raw);
            let (tokens, comment) =
                tokenize(&joined).map_err(|problem| format!("{guide}:{first}: {problem}"))?;
            if tokens.is_empty() {
                continue;
            }
            block.lines.push(Line {
                guide,
                number: first,
                tokens,
                comment,
            });
        }
        if let Some((first, _)) = pending {
            return Err(format!("{guide}:{first}: a continued line ends the block"));
        }
        blocks.push(block);
    }
    Ok(blocks)
}

/// The ```yaml blocks of `guide`: line number of the fence and the text.
fn yaml_blocks(guide: &str) -> Vec<(usize, String)> {
    let text = fs::read_to_string(workspace_root().join(guide)).expect("read the guide");
    let mut found = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        match current.take() {
            None if fence == "```yaml" => current = Some((index + 1, String::new())),
            None => {}
            Some(block) if fence.starts_with("```") => found.push(block),
            Some((number, mut body)) => {
                body.push_str(line);
                body.push('\n');
                current = Some((number, body));
            }
        }
    }
    found
}

/// The node-file examples of the member guide pass `vixp check` on alpha's host, with the
/// paths of [`REWRITES`]: the first one that names a `member`, and each later fragment added
/// to it (the NAT setting).
fn check_node_file_examples(setting: &Setting<'_>, problems: &mut Vec<String>) -> usize {
    let guide = GUIDES[0].0;
    let blocks = yaml_blocks(guide);
    let Some(base) = blocks.iter().find(|(_, text)| text.contains("member:")) else {
        problems.push(format!("{guide}: no node file example"));
        return 0;
    };
    let rewrite = |text: &str| {
        let mut text = text.to_owned();
        for path in ["/etc/vixp/private.key", "/etc/vixp/fabric.yaml"] {
            if let Some(real) = setting.path("alpha", path, false) {
                text = text.replace(path, &real.to_string_lossy());
            }
        }
        text
    };
    let mut checked = 0;
    for (number, text) in &blocks {
        let whole = if text.contains("member:") {
            rewrite(text)
        } else {
            format!("{}{}", rewrite(&base.1), rewrite(text))
        };
        let file = setting.scratch.join(format!("node-example-{number}.yaml"));
        fs::write(&file, &whole).expect("write the node file example");
        let vixp = binary_path("vixp");
        let result = setting.netns("alpha").run(
            &vixp.to_string_lossy(),
            &["check", "-c", &file.to_string_lossy()],
        );
        if let Err(error) = result {
            problems.push(format!(
                "{guide}:{number}: vixp check refuses the example: {error}"
            ));
        }
        checked += 1;
    }
    checked
}

fn all_blocks() -> Vec<Block> {
    GUIDES
        .iter()
        .flat_map(|(guide, _)| blocks(guide).unwrap_or_else(|problem| panic!("{problem}")))
        .collect()
}

// --- the offline check ---------------------------------------------------------------------------

/// Whether `text` holds `word` as a whole token of a string or call: bounded by a quote, a space
/// or an opening parenthesis on the left and a quote, a space or a comma on the right.
fn holds_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        matches!(before, Some('"' | ' ' | '(' | '['))
            && matches!(after, Some('"' | ' ' | ',' | ')'))
    })
}

/// Problems with a marked block: a named function missing, no test among them, or a program,
/// subcommand or flag of the block that none of the named files holds.
fn marker_problems(block: &Block) -> Vec<String> {
    let place = format!("{}:{}", block.guide, block.number);
    let mut problems = Vec::new();
    if block.exercised_by.is_empty() {
        return problems;
    }
    let mut sources = String::new();
    let mut any_test = false;
    for entry in &block.exercised_by {
        let Some((file, function)) = entry.split_once("::") else {
            problems.push(format!(
                "{place}: marker entry {entry:?} is not FILE::FUNCTION"
            ));
            continue;
        };
        let Ok(text) = fs::read_to_string(workspace_root().join(file)) else {
            problems.push(format!(
                "{place}: {file} (named by the marker) does not exist"
            ));
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        let definition = lines.iter().position(|line| {
            let line = line.trim_start();
            [format!("fn {function}("), format!("fn {function}<")]
                .iter()
                .any(|head| {
                    line.starts_with(head)
                        || line.starts_with(&format!("pub {head}"))
                        || line.starts_with(&format!("async {head}"))
                        || line.starts_with(&format!("pub async {head}"))
                })
        });
        match definition {
            None => problems.push(format!("{place}: {file} has no function {function}")),
            Some(at) => {
                any_test |= lines[at.saturating_sub(3)..at]
                    .iter()
                    .any(|line| line.contains("#[test]") || line.contains("#[tokio::test"));
            }
        }
        sources.push_str(&text);
    }
    if !any_test {
        problems.push(format!("{place}: the marker names no #[test] function"));
    }
    for line in &block.lines {
        for argv in line.commands() {
            let Some(program) = argv.first() else {
                continue;
            };
            if BUILTINS.contains(&program.as_str()) {
                continue;
            }
            let ours = program == "vixp" || program == "route-server";
            if !holds_word(&sources, program)
                && !holds_word(&sources, &program.replace('-', "_"))
                && !sources.contains(&format!("binary_path(\"{program}\")"))
            {
                problems.push(format!(
                    "{}: {program} does not occur in {}",
                    line.place(),
                    block.exercised_by.join(", ")
                ));
            }
            let words = argv.iter().skip(1).filter(|word| {
                word.starts_with('-')
                    || (ours && word.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
            });
            for word in words {
                let bare = word.split_once('=').map_or(word.as_str(), |(flag, _)| flag);
                if !holds_word(&sources, bare) {
                    problems.push(format!(
                        "{}: {program} {bare}: not in {}",
                        line.place(),
                        block.exercised_by.join(", ")
                    ));
                }
            }
        }
    }
    problems
}

/// Runs `PROGRAM ARGS... --help` with our binary: clap parses every argument before it reaches
/// `--help`, so an unknown subcommand, flag or value is refused.
fn clap_problem(line: &Line, argv: &[String]) -> Option<String> {
    let output = Command::new(binary_path(&argv[0]))
        .args(&argv[1..])
        .arg("--help")
        .output()
        .expect("run our binary with --help");
    (!output.status.success()).then(|| {
        format!(
            "{}: `{}` is refused by {}: {}",
            line.place(),
            argv.join(" "),
            argv[0],
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

#[test]
fn every_guide_command_is_accepted_by_our_binaries_and_exercised() {
    let blocks = all_blocks();
    let count: usize = blocks.iter().map(|block| block.lines.len()).sum();
    assert!(count >= 30, "the guides have only {count} command lines");
    let mut problems = Vec::new();
    for block in &blocks {
        problems.extend(marker_problems(block));
        for line in &block.lines {
            for argv in line.commands() {
                let program = argv[0].as_str();
                if program == "vixp" || program == "route-server" {
                    problems.extend(clap_problem(line, &argv));
                }
                if block.exercised_by.is_empty() && !RUN_HERE.contains(&program) {
                    problems.push(format!(
                        "{}: {program} is neither run by tests/tests/guides.rs nor in a block \
                         marked <!-- exercised-by: FILE::FUNCTION -->",
                        line.place()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// --- the live run --------------------------------------------------------------------------------

/// Where a live line runs and what its paths become.
struct Setting<'a> {
    exchange: &'a FabricExchange,
    scratch: &'a Path,
    /// `[default: ...]` values of our binaries' options, per program and subcommand path.
    defaults: BTreeMap<String, Vec<(String, String)>>,
    /// `vixp keygen` runs so far: each writes into its own empty directory.
    keygens: usize,
}

impl Setting<'_> {
    /// The file a guide path stands for on `host`.
    fn path(&self, host: &str, guide_path: &str, keygen_output: bool) -> Option<PathBuf> {
        let dir = self.exchange.dir();
        match guide_path {
            "/etc/vixp/fabric.yaml" => Some(dir.join("fabric.yaml")),
            "/etc/vixp/node.yaml" => Some(dir.join(format!("{host}.yaml"))),
            "/etc/vixp/private.key" if keygen_output => Some(
                self.scratch
                    .join(format!("keygen-{}/private.key", self.keygens)),
            ),
            "/etc/vixp/private.key" => Some(dir.join(format!("{host}.key"))),
            RUNTIME_DIR => Some(dir.join(ROUTE_SERVER_RUNTIME_DIR)),
            _ => None,
        }
    }

    fn netns(&self, host: &str) -> &Netns {
        if host == "rs1" {
            self.exchange.route_server_netns()
        } else {
            self.exchange.site(host).netns()
        }
    }

    /// The host a line runs on: the route server's for `route-server` and its HTTP listener,
    /// else the guide's.
    fn host_for(&self, line: &Line, guide_host: &'static str) -> &'static str {
        let to_route_server = line.tokens.iter().any(|token| match token {
            Token::Word(word) => {
                word == "route-server" || word.contains(":9179") || word.contains("lg.example.net")
            }
            Token::Operator(_) => false,
        });
        if to_route_server { "rs1" } else { guide_host }
    }

    /// The `[default: ...]` options of `argv`'s subcommand that name a rewritten path, from
    /// `--help`.
    fn defaults_for(&mut self, argv: &[String]) -> Vec<(String, String)> {
        let subcommand: Vec<&str> = argv
            .iter()
            .skip(1)
            .take_while(|word| !word.starts_with('-'))
            .map(String::as_str)
            .collect();
        let key = format!("{} {}", argv[0], subcommand.join(" "));
        if let Some(found) = self.defaults.get(&key) {
            return found.clone();
        }
        let output = Command::new(binary_path(&argv[0]))
            .args(&subcommand)
            .arg("--help")
            .output()
            .expect("--help");
        let help = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut found = Vec::new();
        let mut current_flag: Option<String> = None;
        for line in help.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with('-') {
                current_flag = trimmed
                    .split([',', ' '])
                    .map(str::trim)
                    .find(|part| part.starts_with("--"))
                    .map(str::to_owned);
            }
            if let (Some(flag), Some(at)) = (&current_flag, line.find("[default: ")) {
                let value = line[at + 10..].trim_end().trim_end_matches(']');
                if value.starts_with("/etc/vixp/") || value == RUNTIME_DIR {
                    found.push((flag.clone(), value.to_owned()));
                }
            }
        }
        self.defaults.insert(key, found.clone());
        found
    }

    /// The shell line the test runs for `line` on `host`, per [`REWRITES`].
    fn rewrite(&mut self, line: &Line, host: &str) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut redirect: Option<String> = None;
        let mut argv: Vec<String> = Vec::new();
        for token in &line.tokens {
            match token {
                Token::Word(word) => match redirect.take() {
                    Some(op) if op == "<" => {
                        let source = self.path(host, word, false).unwrap_or_else(|| word.into());
                        out.push(quote(&source.to_string_lossy()));
                    }
                    Some(_) => {
                        let name = Path::new(word)
                            .file_name()
                            .map_or_else(|| "out".to_owned(), |n| n.to_string_lossy().into_owned());
                        out.push(quote(&self.scratch.join(name).to_string_lossy()));
                    }
                    None => argv.push(word.clone()),
                },
                Token::Operator(op) => {
                    let words = self.rewrite_command(std::mem::take(&mut argv), host);
                    out.extend(words.iter().map(|word| quote(word)));
                    if [">", ">>", "2>", "<"].contains(&op.as_str()) {
                        redirect = Some(op.clone());
                    }
                    out.push(op.clone());
                }
            }
        }
        let words = self.rewrite_command(argv, host);
        out.extend(words.iter().map(|word| quote(word)));
        out.join(" ")
    }

    /// One simple command (argv, without redirections) per [`REWRITES`].
    fn rewrite_command(&mut self, mut argv: Vec<String>, host: &str) -> Vec<String> {
        if argv.is_empty() {
            return argv;
        }
        if argv[0] == "vixp" || argv[0] == "route-server" {
            let keygen = argv.get(1).is_some_and(|word| word == "keygen");
            if keygen {
                self.keygens += 1;
                let dir = self.scratch.join(format!("keygen-{}", self.keygens));
                fs::create_dir_all(&dir).expect("a directory for vixp keygen");
            }
            for (flag, value) in self.defaults_for(&argv) {
                let short = flag_short(&flag);
                let given = argv
                    .iter()
                    .any(|word| *word == flag || short.as_deref() == Some(word.as_str()));
                // `--fabric` stands instead of the node file (clap refuses both together).
                let instead = flag == "--config" && argv.iter().any(|word| word == "--fabric");
                if !given && !instead {
                    argv.push(flag.clone());
                    argv.push(value);
                }
            }
            for word in argv.iter_mut().skip(1) {
                if let Some(path) = self.path(host, word, keygen) {
                    *word = path.to_string_lossy().into_owned();
                }
            }
            argv[0] = binary_path(&argv[0]).to_string_lossy().into_owned();
            return argv;
        }
        for word in argv.iter_mut().skip(1) {
            if let Some(path) = self.path(host, word, false) {
                *word = path.to_string_lossy().into_owned();
            }
            for (from, to) in REWRITES {
                *word = word.replace(from, to);
            }
        }
        if argv[0] == "curl" {
            argv.insert(1, "--fail".to_owned());
        }
        if argv[0] == "birdc" {
            let socket = self.exchange.dir().join(format!("bird-{host}.ctl"));
            argv.insert(1, socket.to_string_lossy().into_owned());
            argv.insert(1, "-s".to_owned());
        }
        argv
    }
}

/// The short form of a long flag as clap prints it (`-c` for `--config`), when the help has one;
/// our binaries use the first letter.
fn flag_short(long: &str) -> Option<String> {
    match long {
        "--config" => Some("-c".to_owned()),
        "--output" => Some("-o".to_owned()),
        "--key" => Some("-k".to_owned()),
        _ => None,
    }
}

/// `word` quoted for `sh` when it needs it.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The PID of a process running with exactly `argv` (its program's file name, then the
/// arguments).
fn process_id(argv: &[String]) -> Option<u32> {
    let entries = fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let raw = fs::read(entry.path().join("cmdline")).ok()?;
        let words: Vec<String> = raw
            .split(|byte| *byte == 0)
            .filter(|word| !word.is_empty())
            .map(|word| String::from_utf8_lossy(word).into_owned())
            .collect();
        (words.len() == argv.len()
            && Path::new(&words[0]).file_name() == Path::new(&argv[0]).file_name()
            && words[1..] == argv[1..])
            .then_some(pid)
    })
}

/// Adds [`NEW_MEMBER`] to the exchange's fabric file, as the operator's guide says before its
/// reload: a new key (generated with `vixp keygen`), free LAN addresses, an endpoint on the
/// underlay. Nothing runs there, so its sessions stay down; the reload must report it added.
fn add_member(exchange: &FabricExchange, scratch: &Path) {
    let public_key = keygen(scratch, NEW_MEMBER).expect("vixp keygen for the new member");
    let fabric = exchange.dir().join("fabric.yaml");
    let mut text = fs::read_to_string(&fabric).expect("read the fabric file");
    assert!(
        text.trim_end()
            .ends_with(&format!("{}:51820", underlay_ipv4(12))),
        "members last"
    );
    let entry = format!(
        "  - name: {NEW_MEMBER}\n    asn: 64503\n    ipv4: {}\n    ipv6: \"{}\"\n    \
         public_key: \"{public_key}\"\n    endpoint: {}:51820\n",
        lan_ipv4(13),
        lan_ipv6(13),
        underlay_ipv4(13),
    );
    text.push_str(&entry);
    fs::write(&fabric, text).expect("write the fabric file");
}

/// Narrows the exchange's IPv6 prefix lengths to /47 and reloads the route server (`route-server
/// reload` through the exchange's control socket), then waits until alpha's
/// [`REFUSED_ROUTE`] is listed as filtered.
fn refuse_alphas_ipv6_route(exchange: &FabricExchange) {
    let fabric = exchange.dir().join("fabric.yaml");
    let text = fs::read_to_string(&fabric).expect("read the fabric file");
    let narrowed = text.replacen(
        "  reject_private_asns: false\n",
        "  reject_private_asns: false\n  prefix_length: {ipv6: [12, 47]}\n",
        1,
    );
    assert_ne!(
        text, narrowed,
        "the fabric file has no policy section to narrow"
    );
    fs::write(&fabric, narrowed).expect("write the fabric file");
    let route_server = binary_path("route-server").to_string_lossy().into_owned();
    let runtime_dir = exchange.dir().join(ROUTE_SERVER_RUNTIME_DIR);
    exchange
        .route_server_netns()
        .run(
            &route_server,
            &[
                "reload",
                "-c",
                &fabric.to_string_lossy(),
                "--runtime-dir",
                &runtime_dir.to_string_lossy(),
            ],
        )
        .expect("route-server reload of the narrowed policy");
    exchange.wait_for(RELOAD, "alpha's IPv6 route refused after the reload", |x| {
        x.route_server_netns()
            .run(
                &route_server,
                &[
                    "show",
                    "routes",
                    "--neighbor",
                    "alpha.ipv6",
                    "--filtered",
                    "-c",
                    &fabric.to_string_lossy(),
                ],
            )
            .is_ok_and(|view| view.contains(REFUSED_ROUTE))
    });
}

#[test]
fn every_unmarked_guide_command_runs_against_a_live_exchange() {
    binary_path("route-server");
    binary_path("vixp");
    let blocks = all_blocks();
    let exchange = FabricExchange::start("guides", members()).expect("start the exchange");
    exchange.wait_for(ESTABLISH, "every session Established", |x| {
        x.sites().iter().all(|site| {
            site.sessions_established() && x.route_server_sees_established(&site.member().name)
        })
    });
    let scratch = TempDir::new("guides-scratch").expect("scratch dir");
    let mut setting = Setting {
        exchange: &exchange,
        scratch: scratch.path(),
        defaults: BTreeMap::new(),
        keygens: 0,
    };
    let mut problems = Vec::new();
    let mut ran = 0;
    let mut filtering = false;
    let mut added = false;
    // What the lines that ask for alpha's refused routes printed.
    let mut filtered_views = Vec::new();
    for block in blocks.iter().filter(|block| block.exercised_by.is_empty()) {
        let guide_host = GUIDES
            .iter()
            .find(|(guide, _)| *guide == block.guide)
            .map_or("alpha", |(_, host)| host);
        if block.guide == TROUBLESHOOT && !filtering {
            refuse_alphas_ipv6_route(&exchange);
            filtering = true;
        }
        for line in &block.lines {
            let host = setting.host_for(line, guide_host);
            let commands = line.commands();
            let long_running = commands.first().is_some_and(|argv| {
                matches!(
                    (argv[0].as_str(), argv.get(1).map(String::as_str)),
                    ("vixp", Some("up")) | ("route-server", Some("run"))
                )
            });
            if long_running {
                // Run by the exchange already: the same command line must be running.
                let rewritten = setting.rewrite(
                    line,
                    if commands[0][0] == "vixp" {
                        guide_host
                    } else {
                        "rs1"
                    },
                );
                let argv: Vec<String> = rewritten.split(' ').map(str::to_owned).collect();
                if process_id(&argv).is_none() {
                    problems.push(format!(
                        "{}: no process of the exchange runs `{rewritten}`",
                        line.place()
                    ));
                }
                ran += 1;
                continue;
            }
            let reloads = commands
                .iter()
                .any(|argv| argv.len() > 1 && argv[0] == "route-server" && argv[1] == "reload");
            let adds_member = block.guide == RUN && reloads && !added;
            if adds_member {
                add_member(&exchange, scratch.path());
                added = true;
            }
            let shell_line = setting.rewrite(line, host);
            let result = setting
                .netns(host)
                .run("bash", &["-o", "pipefail", "-c", &shell_line]);
            // Shown with --nocapture, and with a failure: what each line printed.
            let shown = result
                .as_ref()
                .map_or_else(ToString::to_string, Clone::clone);
            let head: Vec<&str> = shown.lines().take(12).collect();
            eprintln!("$ {shell_line}    [{host}]\n{}", head.join("\n"));
            if adds_member && !shown.contains(&format!("members added: {NEW_MEMBER}")) {
                problems.push(format!(
                    "{}: the reload does not report {NEW_MEMBER} added:\n{shown}",
                    line.place()
                ));
            }
            if block.guide == TROUBLESHOOT
                && shell_line.contains("alpha")
                && shell_line.contains("filtered")
            {
                filtered_views.push((line.place(), shown.clone()));
            }
            let fails = line.expected_to_fail();
            match (&result, fails) {
                (Ok(_), false) | (Err(_), true) => {}
                (Ok(stdout), true) => problems.push(format!(
                    "{}: `{shell_line}` on {host} should fail and exited 0:\n{stdout}",
                    line.place()
                )),
                (Err(error), false) => problems.push(format!(
                    "{}: `{shell_line}` on {host} failed: {error}",
                    line.place()
                )),
            }
            ran += 1;
        }
    }
    assert!(ran >= 20, "only {ran} guide lines ran");
    assert!(added, "{RUN} reloads no route server after adding a member");
    let examples = check_node_file_examples(&setting, &mut problems);
    assert!(examples >= 2, "only {examples} node file examples checked");
    // Troubleshooting filtered routes shows the one the policy refuses, with its reason.
    assert!(
        !filtered_views.is_empty(),
        "{TROUBLESHOOT} asks for no filtered routes"
    );
    for (place, view) in &filtered_views {
        // The reason in words (text) or its label (JSON).
        let why = view.contains("is longer than") || view.contains("prefix_too_long");
        if !(view.contains(REFUSED_ROUTE) && why) {
            problems.push(format!(
                "{place}: does not show {REFUSED_ROUTE} refused as too long:\n{view}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        exchange.report()
    );
}

// --- unit tests of the reader --------------------------------------------------------------------

#[test]
fn tokenize_splits_words_operators_and_the_comment() {
    let (tokens, comment) =
        tokenize("route-server policy -c 'a b.yaml' > policy.md && echo \"x y\"  # a note")
            .expect("ok");
    let words = |list: &[&str]| {
        list.iter()
            .map(|w| Token::Word((*w).to_owned()))
            .collect::<Vec<_>>()
    };
    let mut expected = words(&["route-server", "policy", "-c", "a b.yaml"]);
    expected.push(Token::Operator(">".to_owned()));
    expected.extend(words(&["policy.md"]));
    expected.push(Token::Operator("&&".to_owned()));
    expected.extend(words(&["echo", "x y"]));
    assert_eq!(tokens, expected);
    assert_eq!(comment, "a note");
    let (tokens, _) = tokenize("ping -s 1 2>/dev/null | grep x").expect("ok");
    assert!(tokens.contains(&Token::Operator("2>".to_owned())));
    assert!(tokens.contains(&Token::Operator("|".to_owned())));
    assert!(tokenize("kill -HUP \"$(pidof x)\"").is_err());
    assert!(tokenize("sleep 1 &").is_err());
}

#[test]
fn a_line_knows_its_commands_and_whether_it_should_fail() {
    let (tokens, comment) =
        tokenize("curl -s http://x/metrics | grep vixp_ > out.txt  # fails: too big").expect("ok");
    let line = Line {
        guide: "g.md",
        number: 1,
        tokens,
        comment,
    };
    assert_eq!(
        line.commands(),
        vec![
            vec![
                "curl".to_owned(),
                "-s".to_owned(),
                "http://x/metrics".to_owned()
            ],
            vec!["grep".to_owned(), "vixp_".to_owned()],
        ]
    );
    assert!(line.expected_to_fail());
}

#[test]
fn a_marker_must_name_a_test_that_holds_the_commands_flags() {
    let line = |text: &str| {
        let (tokens, comment) = tokenize(text).expect("ok");
        Line {
            guide: "g.md",
            number: 3,
            tokens,
            comment,
        }
    };
    let block = |marker: &str, text: &str| Block {
        guide: "g.md",
        number: 2,
        exercised_by: vec![marker.to_owned()],
        lines: vec![line(text)],
    };
    let this = "tests/tests/guides.rs::a_marker_must_name_a_test_that_holds_the_commands_flags";
    // This very test holds the words below, so it may be named for them.
    assert!(marker_problems(&block(this, "route-server irr refresh --member alpha")).is_empty());
    // Built at run time, so this file does not hold the flag itself.
    let unknown = format!("route-server irr refresh --no-such-{}", "flag");
    let problems = marker_problems(&block(this, &unknown));
    assert_eq!(problems.len(), 1, "{problems:?}");
    let problems = marker_problems(&block("tests/tests/guides.rs::quote", "vixp status"));
    assert!(
        problems.iter().any(|p| p.contains("no #[test]")),
        "{problems:?}"
    );
    let problems = marker_problems(&block("tests/tests/guides.rs::no_such_test", "vixp status"));
    assert!(
        problems.iter().any(|p| p.contains("has no function")),
        "{problems:?}"
    );
}

// --- links -------------------------------------------------------------------------------------

/// The anchor GitHub gives a heading: lower case, punctuation other than `-` and `_` removed,
/// spaces turned into `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_link_of_the_guides_reaches_a_file_and_heading() {
    let mut problems = Vec::new();
    for (guide, _) in GUIDES {
        let path = workspace_root().join(guide);
        let text = fs::read_to_string(&path).expect("read the guide");
        for (number, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("](") {
                let rest = &line[at + 2..];
                let Some(end) = rest.find(')') else { continue };
                let target = &rest[..end];
                if target.starts_with("http") {
                    continue;
                }
                let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
                let linked = if file.is_empty() {
                    path.clone()
                } else {
                    path.parent().expect("docs/").join(file)
                };
                let Ok(linked_text) = fs::read_to_string(&linked) else {
                    problems.push(format!("{guide}:{}: {target}: no such file", number + 1));
                    continue;
                };
                let headings: Vec<String> = linked_text
                    .lines()
                    .filter_map(|line| line.strip_prefix('#'))
                    .map(|heading| anchor(heading.trim_start_matches('#')))
                    .collect();
                if !fragment.is_empty() && !headings.iter().any(|heading| heading == fragment) {
                    problems.push(format!("{guide}:{}: {target}: no such heading", number + 1));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn anchors_follow_github() {
    assert_eq!(
        anchor(" RPKI: origin validation and ASPA"),
        "rpki-origin-validation-and-aspa"
    );
    assert_eq!(anchor(" `members[N].irr`"), "membersnirr");
    assert_eq!(anchor(" `mss_clamp`"), "mss_clamp");
    assert_eq!(
        anchor(" 10. Deploy with ansible and systemd"),
        "10-deploy-with-ansible-and-systemd"
    );
}
