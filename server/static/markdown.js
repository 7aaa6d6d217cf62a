/**
 * Markdown for replies, rendered safely: marked (GFM: code blocks, lists, tables, links) into HTML,
 * which DOMPurify cleans before it reaches the DOM; no script, handler, style, form or image from
 * model output or user text survives, links open apart (noopener), and code blocks get a copy button.
 * Both libraries are vendored in /static/vendor (their licenses beside them).
 */
import { Marked } from "/static/vendor/marked.esm.js";
import DOMPurify from "/static/vendor/purify.es.js";

const markdown = new Marked({ gfm: true, breaks: true, async: false });

const CLEAN = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "option", "img", "video", "audio",
                "iframe", "object", "embed", "svg", "math"],
  FORBID_ATTR: ["style", "class", "id"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
};

/** The cleaned HTML of ``text`` as markdown (exported for tests). */
export function toSafeHtml(text) {
  return DOMPurify.sanitize(markdown.parse(text || ""), CLEAN);
}

/** Render ``text`` as markdown into ``el`` (replacing what it held). */
export function renderMarkdown(el, text) {
  el.innerHTML = toSafeHtml(text).trim();
  for (const a of el.querySelectorAll("a")) {
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
  }
  for (const table of el.querySelectorAll("table")) {
    const wrap = Object.assign(document.createElement("div"), { className: "table-wrap" });
    table.replaceWith(wrap);
    wrap.append(table);
  }
  for (const pre of el.querySelectorAll("pre")) {
    const copy = Object.assign(document.createElement("button"), { type: "button", className: "copy", textContent: "Copy" });
    copy.dataset.testid = "copy-code";
    copy.onclick = async () => {
      try {
        await navigator.clipboard.writeText(pre.querySelector("code")?.textContent ?? pre.textContent);
        copy.textContent = "Copied";
      } catch {
        copy.textContent = "Copy failed";
      }
      setTimeout(() => { copy.textContent = "Copy"; }, 1500);
    };
    const box = Object.assign(document.createElement("div"), { className: "code" });
    pre.replaceWith(box);
    box.append(copy, pre);
  }
}
