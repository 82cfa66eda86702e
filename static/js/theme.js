// Applies the colour theme to <html> and wires every [data-theme-toggle] button.
//
// Load it as a plain, blocking <script> in <head> (not defer, not a module): the class has to
// be set before the first paint, or a dark-mode reader sees a white flash on every page.
//
// The choice is: a theme remembered in localStorage ("light" or "dark") when the reader has
// pressed a toggle, else the operating system's prefers-color-scheme, followed live.
(function () {
  'use strict';

  var KEY = 'theme';
  var root = document.documentElement;
  var media = window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null;

  // localStorage throws when storage is disabled (some private modes, file:// pages);
  // the theme then simply follows the system.
  function remembered() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === 'light' || value === 'dark' ? value : null;
    } catch (e) {
      return null;
    }
  }

  function remember(value) {
    try {
      window.localStorage.setItem(KEY, value);
    } catch (e) {
      // Not remembered across pages; it still applies to this one.
    }
  }

  function prefersDark() {
    var value = remembered();
    if (value) {
      return value === 'dark';
    }
    return !!(media && media.matches);
  }

  // aria-pressed tells assistive technology whether dark mode is on, so the button's
  // label can stay constant ("Dark mode") instead of flipping between two actions.
  function syncToggles() {
    var dark = root.classList.contains('dark');
    var toggles = document.querySelectorAll('[data-theme-toggle]');
    for (var i = 0; i < toggles.length; i++) {
      toggles[i].setAttribute('aria-pressed', dark ? 'true' : 'false');
    }
  }

  function apply(dark) {
    root.classList.toggle('dark', dark);
    syncToggles();
  }

  apply(prefersDark());

  if (media) {
    var onSystemChange = function () {
      // An explicit choice wins over the system until the reader changes it again.
      if (!remembered()) {
        apply(media.matches);
      }
    };
    if (media.addEventListener) {
      media.addEventListener('change', onSystemChange);
    } else if (media.addListener) {
      media.addListener(onSystemChange); // Safari before 14
    }
  }

  // Delegated, so toggles rendered later (or swapped in over SSE) work without rewiring.
  document.addEventListener('click', function (event) {
    var toggle = event.target.closest && event.target.closest('[data-theme-toggle]');
    if (!toggle) {
      return;
    }
    var dark = !root.classList.contains('dark');
    remember(dark ? 'dark' : 'light');
    apply(dark);
  });

  // The script runs before <body> exists; set aria-pressed on the buttons once they do.
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', syncToggles);
  } else {
    syncToggles();
  }

  // Printers drop backgrounds, which would leave dark mode's light text on white paper.
  var wasDark = false;
  window.addEventListener('beforeprint', function () {
    wasDark = root.classList.contains('dark');
    root.classList.remove('dark');
  });
  window.addEventListener('afterprint', function () {
    root.classList.toggle('dark', wasDark);
  });
})();
