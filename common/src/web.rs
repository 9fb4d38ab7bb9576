//! The web UI's shared parts: the stylesheet and scripts every page loads
//! (`/ui/static/ui.css`, `/ui/static/ui.js`, `/ui/static/graph.js`, compiled
//! into the binaries), and the shell around each node's pages: the head,
//! the navigation bar between the node's pages, the token form's place
//! (`#auth`) and the status line (`#status`). A page's own file holds only
//! its `<main>` and its script. Pages are static: their scripts read the
//! node's JSON APIs with the read token the user types when an API answers
//! 401, so the pages themselves need no token.

use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// A static asset compiled into the binary.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The assets every page may load.
const SHARED: [Asset; 3] = [
    Asset {
        path: "/ui/static/ui.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("web/ui.css"),
    },
    Asset {
        path: "/ui/static/ui.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/ui.js"),
    },
    Asset {
        path: "/ui/static/graph.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("web/graph.js"),
    },
];

/// One page of a node's UI.
pub struct Page {
    /// Where it is served, also its navigation link.
    pub path: &'static str,
    pub title: &'static str,
    /// Scripts it loads besides `/ui/static/ui.js`.
    pub scripts: &'static [&'static str],
    /// Its `<main>` and its script.
    pub body: &'static str,
}

/// A node's UI: its kind (shown beside the name) and its pages, the first
/// one also at `/`.
pub struct Site {
    pub node: &'static str,
    pub pages: &'static [Page],
}

/// The routes of the shared assets and of `site`'s pages.
pub fn router<S: Clone + Send + Sync + 'static>(site: &'static Site) -> Router<S> {
    let mut router = Router::new();
    for asset in &SHARED {
        let (content_type, body) = (asset.content_type, asset.body);
        let serve = move || async move { no_cache(content_type, body.to_string()) };
        router = router.route(asset.path, get(serve));
    }
    for page in site.pages {
        let html = render(site, page);
        let serve = move || {
            let html = html.clone();
            async move { no_cache("text/html; charset=utf-8", html) }
        };
        router = router.route(page.path, get(serve));
    }
    if let Some(first) = site.pages.first() {
        let home = first.path;
        router = router.route("/", get(move || async move { Redirect::to(home) }));
    }
    router
}

/// A page in its shell.
fn render(site: &Site, page: &Page) -> String {
    let mut scripts = String::from("<script src=\"/ui/static/ui.js\"></script>\n");
    for s in page.scripts {
        scripts.push_str(&format!("<script src=\"{s}\"></script>\n"));
    }
    let home = site.pages.first().map_or("/", |p| p.path);
    let mut nav = format!(
        "<a class=\"brand\" href=\"{home}\">scrapegrid</a><span class=\"kind\">{}</span>",
        site.node
    );
    for p in site.pages {
        let class = if p.path == page.path {
            "nav-link active"
        } else {
            "nav-link"
        };
        nav.push_str(&format!(
            "<a class=\"{class}\" href=\"{}\">{}</a>",
            p.path, p.title
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} - scrapegrid</title>\n\
         <link rel=\"stylesheet\" href=\"/ui/static/ui.css\">\n{scripts}</head>\n\
         <body data-node=\"{node}\">\n<nav id=\"nav\">{nav}</nav>\n\
         <div id=\"auth\"></div>\n<div id=\"status\"></div>\n{body}</body>\n</html>\n",
        title = page.title,
        node = site.node,
        body = page.body,
    )
}

/// Pages and assets change with the binary; never serve a stale one.
fn no_cache(content_type: &'static str, body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, Html(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: Site = Site {
        node: "test node",
        pages: &[
            Page {
                path: "/a",
                title: "A",
                scripts: &[],
                body: "<main>a</main>\n",
            },
            Page {
                path: "/b",
                title: "B",
                scripts: &["/ui/static/graph.js"],
                body: "<main>b</main>\n",
            },
        ],
    };

    #[test]
    fn a_page_gets_the_shell_its_scripts_and_the_nav_with_itself_active() {
        let html = render(&SITE, &SITE.pages[1]);
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<title>B - scrapegrid</title>"));
        assert!(html.contains("<script src=\"/ui/static/graph.js\"></script>"));
        assert!(html.contains("<a class=\"brand\" href=\"/a\">scrapegrid</a>"));
        assert!(html.contains("<a class=\"nav-link\" href=\"/a\">A</a>"));
        assert!(html.contains("<a class=\"nav-link active\" href=\"/b\">B</a>"));
        assert!(html.contains("<div id=\"status\"></div>\n<main>b</main>\n</body>"));
    }
}
