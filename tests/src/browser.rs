//! Headless Chromium (Debian's `chromium`) for the web UI tests: it loads
//! a page, lets its scripts run and fetch (virtual time runs only while
//! nothing is loading, so the fetches finish first), and returns the DOM
//! they left, or saves a screenshot.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How long the pages' scripts may run, in virtual time.
const BUDGET_MS: u32 = 10_000;
/// How long one Chromium run may take in real time.
const DEADLINE: Duration = Duration::from_secs(90);
const WINDOW: (u32, u32) = (1280, 900);

pub struct Browser {
    binary: PathBuf,
    /// A profile of its own, removed with it.
    profile: tempfile::TempDir,
}

impl Browser {
    /// Finds Chromium; fails with what to install when it is missing.
    pub fn new() -> Result<Self> {
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .context(
                "the web UI tests need Debian's `chromium` package \
                 (scripts/install-deps.sh installs it)",
            )?;
        Ok(Self {
            binary,
            profile: tempfile::tempdir()?,
        })
    }

    /// The DOM of `url` once its scripts have run.
    pub async fn dom(&self, url: &str) -> Result<String> {
        let out = self.run(&["--dump-dom", url]).await?;
        let dom = String::from_utf8(out).context("the DOM is not UTF-8")?;
        if !dom.contains("<html") {
            bail!("{url}: no DOM came back: {dom}");
        }
        Ok(dom)
    }

    /// Saves a PNG of `url` once its scripts have run, at 1280x900.
    pub async fn screenshot(&self, url: &str, path: &Path) -> Result<()> {
        let _ = std::fs::remove_file(path);
        self.run(&[&format!("--screenshot={}", path.display()), url])
            .await?;
        let png = std::fs::read(path).with_context(|| format!("{url}: no screenshot"))?;
        let (w, h) = png_size(&png).with_context(|| format!("{}: not a PNG", path.display()))?;
        if (w, h) != WINDOW {
            bail!("{}: {w}x{h}, expected {WINDOW:?}", path.display());
        }
        Ok(())
    }

    async fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--password-store=basic",
        ])
        .arg(format!("--user-data-dir={}", self.profile.path().display()))
        .arg(format!("--virtual-time-budget={BUDGET_MS}"))
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let child = cmd.spawn().context("starting chromium")?;
        let out = tokio::time::timeout(DEADLINE, child.wait_with_output())
            .await
            .with_context(|| format!("chromium {args:?} took over {DEADLINE:?}"))??;
        if !out.status.success() {
            bail!(
                "chromium {args:?}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout)
    }
}

/// A PNG's width and height, from its IHDR chunk.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

/// An element of a dumped DOM: its opening tag and what it encloses.
#[derive(Clone, Copy, Debug)]
pub struct Element<'a> {
    pub open: &'a str,
    pub inner: &'a str,
}

impl<'a> Element<'a> {
    /// The value of attribute `name` (as Chromium serializes it: `name="v"`).
    pub fn attr(&self, name: &str) -> Option<&'a str> {
        let needle = format!(" {name}=\"");
        let start = self.open.find(&needle)? + needle.len();
        let len = self.open[start..].find('"')?;
        Some(&self.open[start..start + len])
    }

    pub fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_whitespace().any(|c| c == class))
    }

    /// The text it encloses: tags removed, entities decoded.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in self.inner.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&nbsp;", " ")
            .replace("&amp;", "&")
    }

    /// The `tag` elements inside this one.
    pub fn all(&self, tag: &str) -> Vec<Element<'a>> {
        elements(self.inner, tag)
    }
}

/// Every `tag` element of `dom`, in document order (nested ones too).
pub fn elements<'a>(dom: &'a str, tag: &str) -> Vec<Element<'a>> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = dom[at..].find(&open).map(|i| i + at) {
        at = i + open.len();
        // `<tr` must not match `<track`.
        if !dom[at..].starts_with([' ', '>', '/']) {
            continue;
        }
        let Some(end) = dom[at..].find('>').map(|e| e + at + 1) else {
            break;
        };
        // The matching close tag, counting nested elements of the same tag.
        let (mut depth, mut j) = (1, end);
        let inner_end = loop {
            let next_open = dom[j..].find(&open).map(|p| p + j);
            let Some(next_close) = dom[j..].find(&close).map(|p| p + j) else {
                break dom.len();
            };
            match next_open {
                Some(o) if o < next_close => {
                    depth += 1;
                    j = o + open.len();
                }
                _ => {
                    depth -= 1;
                    if depth == 0 {
                        break next_close;
                    }
                    j = next_close + close.len();
                }
            }
        };
        out.push(Element {
            open: &dom[i..end],
            inner: &dom[end..inner_end],
        });
    }
    out
}

/// The `tag` elements of `dom` with class `class`.
pub fn with_class<'a>(dom: &'a str, tag: &str, class: &str) -> Vec<Element<'a>> {
    elements(dom, tag)
        .into_iter()
        .filter(|e| e.has_class(class))
        .collect()
}

/// The element of `dom` whose id is `id`.
pub fn by_id<'a>(dom: &'a str, tag: &str, id: &str) -> Option<Element<'a>> {
    elements(dom, tag)
        .into_iter()
        .find(|e| e.attr("id") == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_nest_and_read_attributes_and_text() {
        let dom = r#"<div id="a" class="x y"><div class="y">1 &amp; 2</div><tr class="t" data-h="up"><td>3</td></tr></div><track>"#;
        let divs = elements(dom, "div");
        assert_eq!(divs.len(), 2);
        assert_eq!(divs[0].attr("id"), Some("a"));
        assert!(divs[0].has_class("y") && !divs[0].has_class("t"));
        assert_eq!(divs[0].text(), "1 & 23");
        assert_eq!(with_class(dom, "div", "y").len(), 2);
        let rows = with_class(dom, "tr", "t");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].attr("data-h"), Some("up"));
        assert_eq!(rows[0].all("td")[0].text(), "3");
        assert_eq!(by_id(dom, "div", "a").map(|e| e.text().len()), Some(6));
    }
}
