/* Progressive enhancement for the wizard. Every page works without this file:
   - copy buttons: values are plain <code> text; this reveals a "Copy" button beside each;
   - live validation: without JS a <noscript> meta refresh reloads the page; with JS we poll the
     small HTML fragment endpoint and swap the checklist in place until the run finishes.
   The deprovisioning checkbox does not submit by itself: toggling a box must not reload the page and lose the
   keyboard focus; its visible "Update the table" button does. */
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy") ? resolve() : reject(new Error("copy refused")); }
      catch (err) { reject(err); }
      finally { document.body.removeChild(area); }
    });
  }

  function setUpCopyButtons(root) {
    root.querySelectorAll("button.copy-button[data-copy]").forEach(function (button) {
      button.hidden = false;
      if (button.dataset.ready) { return; }
      button.dataset.ready = "1";
      button.addEventListener("click", function () {
        var original = "Copy";
        copyText(button.dataset.copy).then(function () {
          button.textContent = "Copied";
          button.classList.add("copied");
        }, function () {
          button.textContent = "Select and copy";
        }).then(function () {
          window.setTimeout(function () { button.textContent = original; button.classList.remove("copied"); }, 2000);
        });
      });
    });
  }

  /* A finished check changes the steps' marks: fetch this page again and swap its progress bar in. */
  function refreshProgress() {
    var current = document.querySelector("nav.progress");
    if (!current) { return; }
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("nav.progress");
        if (fresh) { current.replaceWith(fresh); }
        /* Step 6: the check may have listed the company's entities; the picker then replaces the typed box. */
        var picker = document.getElementById("entity-picker");
        var freshPicker = doc.getElementById("entity-picker");
        if (picker && freshPicker && freshPicker.innerHTML !== picker.innerHTML) {
          picker.replaceWith(freshPicker);
          var box = document.getElementById("id_entity_id");
          if (box && !doc.getElementById("id_entity_id") && box.closest(".field")) { box.closest(".field").remove(); }
        }
      })
      .catch(function () { /* the marks show on the next page load */ });
  }

  function poll(container) {
    var url = container.dataset.pollUrl;
    var interval = parseInt(container.dataset.pollInterval || "700", 10);
    if (!url) { return; }
    window.setTimeout(function () {
      fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html.trim();
          var fresh = holder.querySelector(".validation");
          if (!fresh) { return; }
          container.replaceWith(fresh);
          setUpCopyButtons(fresh);
          if (fresh.dataset.pollUrl) { poll(fresh); } else { refreshProgress(); }
        })
        .catch(function () { window.setTimeout(function () { poll(container); }, interval * 3); });
    }, interval);
  }

  /* Fragments that keep themselves current (the org admin watching a hand-off's progress). */
  function refresh(container) {
    var url = container.dataset.refreshUrl;
    var interval = parseInt(container.dataset.refreshMs || "3000", 10);
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-refresh-url]");
          if (fresh && fresh.innerHTML !== container.innerHTML) { container.innerHTML = fresh.innerHTML; }
          refresh(container);
        })
        .catch(function () { window.setTimeout(function () { refresh(container); }, interval * 3); });
    }, interval);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh-url]").forEach(refresh);
    setUpCopyButtons(document);
    document.querySelectorAll(".validation[data-poll-url]").forEach(poll);
  });
})();
