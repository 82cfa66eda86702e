// Keyboard shortcuts for a speaker at a projector: each key presses a button of the page.
// The keys and the buttons they press come from the layout's list (<dialog data-shortcuts>,
// rendered from templates.Shortcuts); ? opens that list and Escape closes it. A key does
// nothing while a field has the focus (typing a number of tasks must not launch a run),
// with Ctrl, Alt or Meta held (the browser's own shortcuts), or on a page without its
// button.

/** Whether the key was typed into something that takes text. */
export function typing(target) {
  if (!target || !target.closest) {
    return false;
  }
  return !!target.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])');
}

/** The first element of the page matching selector that a person could press. */
function pressable(selector, doc) {
  for (const el of doc.querySelectorAll(selector)) {
    if (el.disabled || el.closest('[hidden], dialog')) {
      continue;
    }
    if (el.getClientRects().length > 0) {
      return el;
    }
  }
  return null;
}

// A key that submitted a form (a launch) has sent the page away: a second press before the
// next page arrives would launch a second run.
let leaving = false;
if (typeof window !== 'undefined') {
  // Back to this page from the browser's cache: it is not leaving any more.
  window.addEventListener('pageshow', () => {
    leaving = false;
  });
}

/** Handles one keydown: returns what it did ("" for nothing), for tests and for the log. */
export function onKey(event, doc = document) {
  if (leaving || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) {
    return '';
  }
  const list = doc.querySelector('dialog[data-shortcuts]');
  if (!list) {
    return '';
  }
  if (event.key === 'Escape' && list.open) {
    list.close();
    event.preventDefault();
    return 'close';
  }
  if (typing(event.target)) {
    return '';
  }
  if (event.key === '?') {
    if (list.open) {
      list.close();
      return 'close';
    }
    list.showModal();
    event.preventDefault();
    return 'list';
  }
  if (event.shiftKey || list.open) {
    return '';
  }
  const key = list.querySelector(`[data-shortcut="${CSS.escape(event.key)}"]`);
  const target = key && pressable(key.getAttribute('data-target'), doc);
  if (!target) {
    return '';
  }
  event.preventDefault();
  leaving = !!target.form;
  target.click();
  return event.key;
}

if (typeof document !== 'undefined') {
  document.addEventListener('keydown', (event) => {
    const did = onKey(event);
    if (did) {
      document.documentElement.setAttribute('data-last-shortcut', did);
    }
  });
}
