/* scrapegrid shared browser helpers, served at /ui/static/ui.js.
 * Plain script (no modules): defines the global `SG`.
 * Rule: API data only ever reaches the DOM as text nodes or attribute values. */
(function () {
  "use strict";

  var TOKEN_KEY = "scrapegrid.token";
  // Links may only lead to http(s) URLs or paths on this node.
  var SAFE_URL = /^(https?:\/\/|\/(?!\/)|\?|#)/i;
  var SG = {};

  function byId(id) { return document.getElementById(id); }

  /* ---- DOM builder ---------------------------------------------------- */

  // SG.el("a", {class: "x", href: u, "data-job": j, onclick: fn}, "text", node, [more])
  SG.el = function (tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class" || k === "className") {
          node.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : String(v);
        } else if (k.slice(0, 2) === "on" && typeof v === "function") {
          node.addEventListener(k.slice(2).toLowerCase(), v);
        } else if (k === "dataset" && typeof v === "object") {
          Object.keys(v).forEach(function (d) { node.dataset[d] = String(v[d]); });
        } else if (k === "value" || k === "checked" || k === "selected") {
          node[k] = v; // properties, not attributes, so the live state is set
        } else if ((k === "href" || k === "src") && !SAFE_URL.test(String(v))) {
          return; // a javascript: (or any other) URL from the data is never a link
        } else if (k === "style" && typeof v === "object") {
          Object.keys(v).forEach(function (s) { node.style[s] = v[s]; });
        } else {
          node.setAttribute(k, v === true ? "" : String(v));
        }
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  };

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    if (child instanceof Node) { node.appendChild(child); return; }
    node.appendChild(document.createTextNode(String(child)));
  }

  // Remove all children, then append the given ones.
  SG.fill = function (node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    for (var i = 1; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  };

  /* ---- formatting ----------------------------------------------------- */

  // One chip per label, in the order given (the APIs already sort them);
  // a metric name (__name__) comes first as a bare, highlighted chip.
  SG.labels = function (map) {
    var box = SG.el("span", { class: "labels" });
    map = map || {};
    if (map.__name__ !== undefined) box.appendChild(SG.el("span", { class: "label-chip metric-name" }, map.__name__));
    Object.keys(map).forEach(function (name) {
      if (name === "__name__") return;
      box.appendChild(SG.el("span", { class: "label-chip", title: name + '="' + map[name] + '"' },
        name + '="' + map[name] + '"'));
    });
    return box;
  };

  function pad(n, w) { n = String(n); while (n.length < (w || 2)) n = "0" + n; return n; }

  // Human duration from seconds: "850ms", "3.2s", "4m 5s", "2h 3m", "3d 4h".
  function span(sec) {
    if (sec < 1) return Math.round(sec * 1000) + "ms";
    if (sec < 60) return sec.toFixed(1) + "s";
    var s = Math.floor(sec);
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  // "3.2s ago"; Go's zero time (never scraped) and unparsable input -> "never".
  SG.ago = function (rfc3339) {
    if (!rfc3339 || /^0001-01-01/.test(rfc3339)) return "never";
    var t = Date.parse(rfc3339);
    if (isNaN(t) || t <= 0) return "never";
    var d = (Date.now() - t) / 1000;
    if (d < 0) return "in " + span(-d); // clock skew between browser and server
    return span(d) + " ago";
  };

  // Seconds (float) -> "12.3ms", "450µs", "1.234s".
  SG.seconds = function (x) {
    if (x === null || x === undefined || x === "") return "";
    x = Number(x);
    if (!isFinite(x)) return String(x);
    if (x === 0) return "0s";
    var a = Math.abs(x);
    if (a < 1e-3) return (x * 1e6).toFixed(a < 1e-5 ? 2 : 0) + "µs";
    if (a < 1) return (x * 1e3).toFixed(1) + "ms";
    if (a < 60) return x.toFixed(3) + "s";
    return span(a);
  };

  // Milliseconds since epoch -> local "2026-12-07 10:00:01" (".123" when not whole seconds).
  SG.fmtTime = function (ms) {
    if (ms === null || ms === undefined || ms === "" || isNaN(Number(ms))) return "";
    var d = new Date(Number(ms));
    var s = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (d.getMilliseconds()) s += "." + pad(d.getMilliseconds(), 3);
    return s;
  };

  // Integer with thin grouping: 1234567 -> "1,234,567".
  SG.num = function (n) {
    if (n === null || n === undefined || n === "") return "";
    var x = Number(n);
    return isFinite(x) ? x.toLocaleString("en-US") : String(n);
  };

  /* ---- URL query state ------------------------------------------------ */

  SG.query = function () { return new URLSearchParams(location.search); };

  // Replace the URL query (no history entry); empty values are dropped.
  SG.setQuery = function (obj) {
    var p = new URLSearchParams();
    Object.keys(obj).forEach(function (k) {
      if (obj[k] !== "" && obj[k] !== null && obj[k] !== undefined) p.set(k, obj[k]);
    });
    var qs = p.toString();
    history.replaceState(null, "", location.pathname + (qs ? "?" + qs : ""));
  };

  /* ---- API ------------------------------------------------------------ */

  function showAuth(hadToken) {
    var box = byId("auth");
    if (!box || byId("token")) return; // already shown (parallel requests)
    var input = SG.el("input", { type: "password", id: "token", placeholder: "bearer token", autocomplete: "off", size: 40 });
    var form = SG.el("form", {
      onsubmit: function (e) {
        e.preventDefault();
        if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
        else sessionStorage.removeItem(TOKEN_KEY);
        location.reload();
      }
    },
      SG.el("span", null, hadToken ? "The stored token was rejected. Token:" : "This server requires a bearer token:"),
      input,
      SG.el("button", { type: "submit", id: "token-save", class: "primary" }, "Save"));
    SG.fill(box, form);
    input.focus();
  }

  // GET path?params -> Promise of the envelope's `data`.
  SG.api = function (path, params) {
    var url = path;
    if (params) {
      var p = new URLSearchParams();
      Object.keys(params).forEach(function (k) {
        if (params[k] !== null && params[k] !== undefined) p.set(k, params[k]);
      });
      var qs = p.toString();
      if (qs) url += (url.indexOf("?") < 0 ? "?" : "&") + qs;
    }
    var headers = { Accept: "application/json" };
    var token = null;
    try { token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* storage disabled */ }
    if (token) headers.Authorization = "Bearer " + token;

    return fetch(url, { headers: headers, credentials: "same-origin", cache: "no-store" })
      .catch(function (e) {
        throw new Error("cannot reach " + path + ": " + (e && e.message ? e.message : e));
      })
      .then(function (resp) {
        if (resp.status === 401) {
          showAuth(!!token);
          throw new Error("unauthorized: a bearer token is required");
        }
        return resp.text().then(function (text) {
          var body;
          try { body = JSON.parse(text); } catch (e) {
            throw new Error(path + ": HTTP " + resp.status + " " + resp.statusText +
              (resp.ok ? " (response is not JSON)" : (text ? ": " + text.slice(0, 200) : "")));
          }
          if (body && body.status === "error") {
            throw new Error((body.errorType ? body.errorType + ": " : "") + (body.error || "unknown error"));
          }
          if (!resp.ok) throw new Error(path + ": HTTP " + resp.status + " " + resp.statusText);
          return body ? body.data : undefined;
        });
      });
  };

  /* ---- page chrome ---------------------------------------------------- */

  // items: [[label, href], ...] or [{label, href}]; kind: "control plane" / "storage node".
  // Neutral message in #status (empty string hides it).
  SG.status = function (msg) {
    var st = byId("status");
    if (!st) return;
    st.className = "";
    SG.fill(st, msg || "");
  };

  // First data rendered. Also clears an error left by an earlier failed refresh.
  SG.done = function () {
    var st = byId("status");
    if (st && st.classList.contains("error")) SG.status("");
    delete document.body.dataset.error;
    document.body.dataset.loaded = "true";
  };

  SG.fail = function (msg) {
    msg = msg && msg.message ? msg.message : String(msg);
    var st = byId("status");
    if (st) { st.className = "error"; SG.fill(st, msg); }
    document.body.dataset.error = msg;
  };

  window.SG = SG;
})();
