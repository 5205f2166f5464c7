// qpage dev: reloads the page when the site is rebuilt, swaps stylesheets in place,
// and shows build errors over the page until they are fixed.
(() => {
  const id = "__qpage_overlay";
  const hide = () => document.getElementById(id)?.remove();
  const show = (errors) => {
    hide();
    const box = document.createElement("div");
    box.id = id;
    box.setAttribute("role", "alert");
    box.style.cssText = "position:fixed;inset:0;z-index:2147483647;overflow:auto;" +
      "background:rgba(20,20,24,.94);color:#f4f4f5;font:14px/1.5 ui-monospace,monospace;padding:2em";
    const h = document.createElement("h2");
    h.textContent = "qpage: the site does not build";
    h.style.cssText = "color:#fca5a5;font:bold 18px sans-serif;margin:0 0 1em";
    box.append(h);
    for (const e of errors) {
      const p = document.createElement("pre");
      p.style.cssText = "white-space:pre-wrap;margin:0 0 1.2em";
      let where = e.file;
      if (e.line) where += ":" + e.line + (e.column ? ":" + e.column : "");
      p.textContent = where + "\n  " + e.message + (e.help ? "\n  help: " + e.help : "");
      box.append(p);
    }
    const foot = document.createElement("p");
    foot.textContent = "Fix the file and save: this page updates by itself.";
    foot.style.cssText = "color:#a1a1aa;font:13px sans-serif";
    box.append(foot);
    (document.body || document.documentElement).append(box);
  };
  const swap = (paths) => {
    for (const link of document.querySelectorAll('link[rel="stylesheet"]')) {
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin || !paths.includes(url.pathname)) continue;
      const next = link.cloneNode();
      next.href = url.pathname + "?qpage=" + Date.now();
      next.onload = () => link.remove();
      link.after(next);
    }
  };
  const source = new EventSource("/__qpage/events");
  source.addEventListener("reload", () => location.reload());
  source.addEventListener("css", (e) => swap(JSON.parse(e.data)));
  source.addEventListener("errors", (e) => {
    window.__qpageLive = true;
    show(JSON.parse(e.data));
  });
  source.addEventListener("ok", hide);
  // A change told before this page's stream connected (between the page's load and
  // now) was missed: reload once for it.
  source.addEventListener("ready", (e) => {
    window.__qpageLive = true;
    hide();
    let changed = 0;
    try { changed = JSON.parse(e.data).changed_ms || 0; } catch (_) {}
    const key = "__qpage_reloaded_for";
    let seen = null;
    try { seen = sessionStorage.getItem(key); } catch (_) {}
    if (changed > performance.timeOrigin && seen !== String(changed)) {
      try { sessionStorage.setItem(key, String(changed)); } catch (_) {}
      location.reload();
    }
  });
})();
