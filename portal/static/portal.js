// ivrpay portal: the copy buttons and the Advanced statements editor. The
// portal works without this script; it only saves typing.
(function () {
  "use strict";

  function copyText(text, button) {
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text) && done(); });
    } else if (fallbackCopy(text)) {
      done();
    }
  }

  // fallbackCopy works over plain http, where navigator.clipboard is missing.
  function fallbackCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.className = "offscreen";
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    return ok;
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("button.copy") : null;
    if (!button) { return; }
    var el = document.getElementById(button.getAttribute("data-copy"));
    if (!el) { return; }
    var text = el.value !== undefined && el.tagName === "INPUT" ? el.value : el.textContent;
    if (el.tagName === "INPUT") { el.select(); }
    copyText(text, button);
  });

  // The Advanced editor follows the preset and merchant choices until the
  // user edits it; then it is theirs.
  var form = document.getElementById("create-key");
  var textarea = document.getElementById("statements");
  if (!form || !textarea) { return; }
  var dirty = false;
  textarea.addEventListener("input", function () { dirty = true; });

  function statements() {
    var preset = form.querySelector("input[name=preset]:checked");
    var merchant = form.querySelector("[name=merchant_id]");
    var st = {
      permissions: preset ? JSON.parse(preset.getAttribute("data-permissions")) : [],
      constraints: { platform: { platform_id: form.getAttribute("data-platform-id") } }
    };
    if (merchant && merchant.value.trim() !== "") {
      st.constraints.merchant = { merchant_id: merchant.value.trim() };
    }
    return JSON.stringify([st], null, 2);
  }

  form.addEventListener("change", function (ev) {
    if (ev.target === textarea || dirty) { return; }
    if (ev.target.name === "preset" || ev.target.name === "merchant_id") {
      textarea.value = statements();
    }
  });
})();
