// Vigil's web client: what every page shares. No inline script anywhere (the pages' Content
// Security Policy forbids it); page-specific code lives in its own file.
"use strict";

(function () {
  const body = document.body;

  // htmx requests carry the page's form token, like the forms do.
  document.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["x-csrf-token"] = body.dataset.csrf || "";
  });

  // Automatic sign-out after the configured time without a click, a key or a touch.
  const idleMinutes = Number(body.dataset.idleMinutes || 0);
  if (idleMinutes > 0) {
    let last = Date.now();
    const touch = () => { last = Date.now(); };
    for (const kind of ["pointerdown", "keydown", "wheel", "touchstart"]) {
      document.addEventListener(kind, touch, { passive: true });
    }
    const signOut = async () => {
      try {
        await fetch("/logout", {
          method: "POST",
          headers: { "x-csrf-token": body.dataset.csrf || "" },
          credentials: "same-origin",
          redirect: "manual",
        });
      } finally {
        window.location.assign("/login?reason=idle");
      }
    };
    window.setInterval(() => {
      if (Date.now() - last >= idleMinutes * 60 * 1000) signOut();
    }, 5000);
  }
})();
