// Picks the reader's own time zone on a fresh signup form. Without this script the
// <select> keeps its default (UTC) and the reader picks from the list.
(function () {
  "use strict";
  var select = document.querySelector("select[data-detect-timezone]");
  if (!select || typeof Intl === "undefined") return;
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (error) {
    return;
  }
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === zone) {
      select.value = zone;
      return;
    }
  }
})();
