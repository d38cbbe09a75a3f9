//! Headless Chromium (Debian's `chromium`) as a test browser: loads a page inside a test
//! namespace, runs its scripts and hands back the DOM or a screenshot. Owns the one browser
//! process of each call and its profile directory; must not reach any address outside the
//! namespace it runs in, and never signals anything but the process group `timeout` leads.

use std::path::{Path, PathBuf};

use crate::{error::Error, netns::Netns, temp::TempDir};

/// The Debian package's browser.
pub const PROGRAM: &str = "chromium";
/// Wall-clock limit of one browser run; `timeout` kills the whole browser process group after it.
pub const RUN_SECONDS: u32 = 30;
/// Virtual time the page gets to finish its requests and scripts before the DOM is taken.
/// Virtual time runs faster than the clock when the page is idle, so this costs little.
pub const SCRIPT_BUDGET_MS: u32 = 5000;

/// A browser window size in CSS pixels (device scale factor 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Window {
    /// A laptop screen.
    pub const DESKTOP: Window = Window {
        width: 1280,
        height: 720,
    };
    /// A phone held upright.
    pub const PHONE: Window = Window {
        width: 390,
        height: 844,
    };
    /// A phone's width with the page scrolled through: a screenshot of a whole short page.
    pub const PHONE_PAGE: Window = Window {
        width: 390,
        height: 1300,
    };
}

/// Headless Chromium runs inside one namespace; each call starts a fresh browser with its own
/// profile under `dir`.
#[derive(Debug)]
pub struct Chromium<'a> {
    netns: &'a Netns,
    profiles: TempDir,
    runs: u32,
}

impl<'a> Chromium<'a> {
    /// A browser that will run in `netns`.
    pub fn new(netns: &'a Netns) -> Result<Self, Error> {
        Ok(Self {
            netns,
            profiles: TempDir::new("chromium")?,
            runs: 0,
        })
    }

    /// The arguments every run shares: headless, no sandbox (tests run as root), nothing in
    /// the background, a fresh profile, one device pixel per CSS pixel.
    fn arguments(&mut self, window: Window) -> Vec<String> {
        self.runs += 1;
        let profile: PathBuf = self.profiles.path().join(format!("profile-{}", self.runs));
        vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-component-update".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={},{}", window.width, window.height),
            format!("--virtual-time-budget={SCRIPT_BUDGET_MS}"),
        ]
    }

    fn run(&self, arguments: Vec<String>) -> Result<String, Error> {
        let mut full = vec![
            "--kill-after=5".to_owned(),
            RUN_SECONDS.to_string(),
            PROGRAM.to_owned(),
        ];
        full.extend(arguments);
        let borrowed: Vec<&str> = full.iter().map(String::as_str).collect();
        self.netns.run("timeout", &borrowed)
    }

    /// Loads `url`, lets its scripts run, and returns the serialized DOM (`--dump-dom`).
    pub fn dump_dom(&mut self, url: &str, window: Window) -> Result<String, Error> {
        let mut arguments = self.arguments(window);
        arguments.push("--dump-dom".to_owned());
        arguments.push(url.to_owned());
        self.run(arguments)
    }

    /// Loads `url`, lets its scripts run, and writes a PNG of the window to `file`.
    pub fn screenshot(&mut self, url: &str, window: Window, file: &Path) -> Result<(), Error> {
        let mut arguments = self.arguments(window);
        arguments.push(format!("--screenshot={}", file.display()));
        arguments.push(url.to_owned());
        self.run(arguments)?;
        if file.is_file() {
            Ok(())
        } else {
            Err(Error::Parse {
                what: "chromium --screenshot",
                detail: format!("no file at {} after loading {url}", file.display()),
            })
        }
    }
}

/// The text of a DOM dump with tags removed and whitespace collapsed, for asserting on what a
/// reader sees (entities `&amp;`, `&lt;`, `&gt;`, `&quot;` and `&#39;` decoded).
pub fn visible_text(dom: &str) -> String {
    let mut text = String::with_capacity(dom.len());
    let mut in_tag = false;
    for character in dom.chars() {
        match character {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(character),
            _ => {}
        }
    }
    let decoded = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_drops_tags_and_decodes_entities() {
        let dom = "<tr><td data-label=\"Member\"><a href=\"/x\">alpha</a></td>\n  \
                   <td>next hop&nbsp;198.18.0.12 is not alpha&#39;s &lt;LAN&gt; address</td></tr>";
        assert_eq!(
            visible_text(dom),
            "alpha next hop 198.18.0.12 is not alpha's <LAN> address"
        );
    }
}
