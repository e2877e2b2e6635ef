/* Straits console: poll what is still running, and submit controls that change. No logic
   here: every number and word comes from the server (figures.js draws the charts). */
(function () {
  "use strict";
  // A fragment that refreshes itself: <tbody data-poll="/ui/plans/rows" data-every="2000">
  document.querySelectorAll("[data-poll]").forEach(function (el) {
    var every = parseInt(el.getAttribute("data-every") || "2000", 10);
    var timer = setInterval(function () {
      fetch(el.getAttribute("data-poll"), {credentials: "same-origin"})
        .then(function (r) {
          // 205: the plan is done. Redirected: the session is gone (signed out in another
          // tab, token revoked, cookie expired) and fetch followed the server to the sign-in
          // page, which went into the table. Either way the whole page is loaded again.
          if (r.status === 205 || r.redirected) {
            clearInterval(timer); window.location.reload(); return null;
          }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html === null) { return; }
          el.innerHTML = html;
          if (!el.querySelector("[data-live]")) { clearInterval(timer); }
        })
        .catch(function () { /* keep the last state; try again next tick */ });
    }, every);
  });

  // Controls that submit their form when changed (the what-if slider, selects)
  document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
  document.querySelectorAll("input[type=range][data-output]").forEach(function (el) {
    var out = document.getElementById(el.getAttribute("data-output"));
    var labels = JSON.parse(el.getAttribute("data-labels") || "[]");
    var show = function () { if (out) { out.textContent = labels[el.value] || el.value; } };
    el.addEventListener("input", show);
    show();
  });
})();
