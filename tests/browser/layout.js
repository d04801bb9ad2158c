// What overflows sideways on a page: the tables wider than their box, and the page itself.
// Used by ui_flow.js (the report and the PERSEUS tab) and report_layout.js (a report file).
"use strict";

async function overflowing(page, selector = "table") {
  return page.$$eval(selector, (tables) =>
    tables
      .filter((t) => t.offsetParent !== null) // only what is shown
      .map((t) => {
        const box = t.parentElement;
        // A table in a scrolling box overflows when the box scrolls; a bare one when it is wider than the page.
        const width = box.scrollWidth > box.clientWidth + 1 ? box.scrollWidth : t.getBoundingClientRect().right;
        const limit = box.scrollWidth > box.clientWidth + 1 ? box.clientWidth : document.documentElement.clientWidth;
        let heading = t.previousElementSibling || box.previousElementSibling;
        while (heading && !/^H[1-4]$/.test(heading.tagName)) heading = heading.previousElementSibling;
        const id = t.id || (heading ? heading.textContent.trim() : t.className || t.tagName);
        return { id, width: Math.round(width), limit: Math.round(limit) };
      })
      .filter((t) => t.width > t.limit + 1),
  );
}

async function pageOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

module.exports = { overflowing, pageOverflow };
