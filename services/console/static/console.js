// The console's live parts: each element with data-refresh is fetched again from that
// fragment route every data-refresh-ms of <body>, and replaced. Nothing else is loaded.
"use strict";
(function () {
  const every = Number(document.body.dataset.refreshMs) || 1500;
  const stamp = document.getElementById("updated");

  async function refresh(element) {
    try {
      const response = await fetch(element.dataset.refresh, {headers: {"Accept": "text/html"}});
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      element.innerHTML = await response.text();
      element.classList.remove("stale");
      if (stamp) {
        stamp.textContent = "updated " + new Date().toLocaleTimeString();
      }
    } catch (error) {
      element.classList.add("stale");
      if (stamp) {
        stamp.textContent = "the console did not answer (" + error.message + "); retrying";
      }
    }
  }

  function tick() {
    if (!document.hidden) {
      document.querySelectorAll("[data-refresh]").forEach(refresh);
    }
  }

  if (document.querySelector("[data-refresh]")) {
    setInterval(tick, every);
  }
})();
