// Live updates for kro-hub's page. The server renders every section; this
// only swaps in the sections each event carries and notes which cells
// changed state. Text from the cluster is set with textContent, never as
// markup.
(function () {
  'use strict';
  var live = document.getElementById('live');
  var changes = document.getElementById('changes');
  var MAX_CHANGES = 100;

  function states() {
    var seen = {};
    document.querySelectorAll('[data-key]').forEach(function (el) {
      seen[el.dataset.key] = { state: el.dataset.state, label: el.dataset.label };
    });
    return seen;
  }

  function note(text) {
    var item = document.createElement('li');
    item.textContent = new Date().toLocaleTimeString() + '  ' + text;
    changes.insertBefore(item, changes.firstChild);
    while (changes.children.length > MAX_CHANGES) {
      changes.removeChild(changes.lastChild);
    }
  }

  function apply(sections) {
    var before = states();
    Object.keys(sections).forEach(function (id) {
      var section = document.getElementById(id);
      if (section) {
        section.innerHTML = sections[id];
      }
    });
    var after = states();
    document.querySelectorAll('[data-key]').forEach(function (el) {
      var was = before[el.dataset.key];
      if (was && was.state !== el.dataset.state) {
        el.classList.add('changed');
        note(el.dataset.label + ': ' + was.state + ' \u2192 ' + el.dataset.state);
      } else if (!was && el.dataset.key.slice(-1) === '|') {
        note(el.dataset.label + ': new, ' + el.dataset.state);
      }
    });
    Object.keys(before).forEach(function (key) {
      if (!(key in after) && key.slice(-1) === '|') {
        note(before[key].label + ': gone');
      }
    });
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }

  var source = new EventSource('events');
  source.onopen = function () {
    live.textContent = 'live';
    live.className = 'live on';
  };
  source.onmessage = function (event) {
    apply(JSON.parse(event.data));
  };
  source.onerror = function () {
    live.textContent = 'reconnecting\u2026';
    live.className = 'live off';
  };
})();
