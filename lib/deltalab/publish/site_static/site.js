// The study's site (deltalab.site): every table of a page gets a box that scrolls sideways when the table is wider
// than the page, with a line saying so; its first column stays (site.css).
(function () {
  function boxes() {
    for (const table of document.querySelectorAll("article table")) {
      if (table.parentElement.classList.contains("site-scroll")) continue;
      const box = document.createElement("div");
      box.className = "site-scroll";
      table.parentElement.insertBefore(box, table);
      box.appendChild(table);
    }
    mark();
  }
  function mark() {
    for (const box of document.querySelectorAll(".site-scroll")) {
      const wide = box.scrollWidth > box.clientWidth + 1;
      box.classList.toggle("site-wide", wide);
      const hint = box.previousElementSibling;
      const has = hint && hint.classList.contains("site-scroll-hint");
      if (wide && !has) {
        const line = document.createElement("p");
        line.className = "site-scroll-hint";
        line.textContent = "Wider than the page: scroll the table sideways →";
        box.parentElement.insertBefore(line, box);
      } else if (!wide && has) {
        hint.remove();
      }
    }
  }
  // Below 1600 px the right-hand contents is a drawer (site.css): the list button of the article's header opens it
  // through the theme's own button, which the theme hides at these widths.
  function drawer() {
    const theirs = document.querySelector(".bd-header .secondary-toggle");
    for (const button of document.querySelectorAll(".bd-header-article .secondary-toggle")) {
      if (!theirs || button === theirs) continue;
      button.addEventListener("click", event => { event.preventDefault(); theirs.click(); });
    }
  }
  function ready() { boxes(); drawer(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
  window.addEventListener("resize", mark);
})();
