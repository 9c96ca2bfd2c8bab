"""The stylesheet and script inlined into the HTML report (no network, no libraries).

The script gives each graph panel pan (drag), zoom (wheel, +/- buttons) and a
reset that fits the graph's width into the panel, top first; clicking a node,
or typing a name in the search box, highlights the node of that name in both
panels and centres it.
"""

CSS = """
* { box-sizing: border-box; }
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #222; background: #f4f5f7; }
header { padding: 10px 18px; background: #263238; color: #fff; }
header h1 { font-size: 18px; margin: 0 0 4px 0; }
header .meta { font-size: 12px; color: #cfd8dc; }
main { padding: 10px 18px 30px 18px; }
section { margin-top: 18px; }
h2 { font-size: 15px; margin: 0 0 6px 0; }
.panels { display: flex; gap: 10px; }
.panel { flex: 1 1 0; min-width: 0; background: #fff; border: 1px solid #cfd8dc; border-radius: 4px; }
.toolbar { display: flex; align-items: center; gap: 6px; padding: 4px 8px;
           border-bottom: 1px solid #eceff1; font-size: 13px; }
.toolbar .name { font-weight: bold; margin-right: auto; }
.toolbar button { font-size: 12px; padding: 1px 8px; cursor: pointer; }
.toolbar .zoom { color: #607d8b; min-width: 44px; text-align: right; }
.viewport { position: relative; height: 72vh; overflow: hidden; cursor: grab; background: #fff; }
.viewport.dragging { cursor: grabbing; }
.stage { position: absolute; left: 0; top: 0; transform-origin: 0 0; }
.stage svg { display: block; }
.finder { margin: 8px 0; font-size: 13px; }
.finder input { width: 360px; font-size: 13px; padding: 2px 4px; }
.finder .status { color: #607d8b; margin-left: 8px; }
g.node.picked :is(path, polygon, ellipse) { stroke: #d500f9 !important; stroke-width: 5px; }
table { border-collapse: collapse; font-size: 12px; background: #fff; }
th, td { border: 1px solid #cfd8dc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #eceff1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.pass { color: #2e7d32; font-weight: bold; }
td.fail { color: #c62828; font-weight: bold; }
.names { font-family: monospace; font-size: 11px; max-width: 900px; word-break: break-all; }
.counts span { display: inline-block; margin-right: 14px; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 2px solid; margin-right: 4px;
          vertical-align: middle; }
.empty { color: #607d8b; font-style: italic; font-size: 13px; }
"""

JS = r"""
(function () {
  'use strict';
  var panels = [];

  function Panel(root) {
    this.root = root;
    this.viewport = root.querySelector('.viewport');
    this.stage = root.querySelector('.stage');
    this.svg = this.stage.querySelector('svg');
    this.zoomLabel = root.querySelector('.zoom');
    this.scale = 1; this.x = 0; this.y = 0;
    this.width = this.svg.width.baseVal.value || this.svg.getBoundingClientRect().width;
    this.height = this.svg.height.baseVal.value || this.svg.getBoundingClientRect().height;
    this.bind();
    this.reset();
  }

  Panel.prototype.apply = function () {
    this.stage.style.transform =
      'translate(' + this.x + 'px,' + this.y + 'px) scale(' + this.scale + ')';
    this.zoomLabel.textContent = Math.round(this.scale * 100) + '%';
  };

  // Fit the width (never enlarge) and show the top: deep networks are tall, and a
  // whole-graph fit would shrink them to an unreadable strip.
  Panel.prototype.reset = function () {
    var w = this.viewport.clientWidth, h = this.viewport.clientHeight;
    var s = Math.min(w / this.width, 1);
    this.scale = s > 0 && isFinite(s) ? s : 1;
    this.x = (w - this.width * this.scale) / 2;
    this.y = Math.max(0, (h - this.height * this.scale) / 2);
    this.apply();
  };

  Panel.prototype.zoomAt = function (factor, px, py) {
    var next = Math.min(Math.max(this.scale * factor, 0.01), 40);
    factor = next / this.scale;
    this.x = px - (px - this.x) * factor;
    this.y = py - (py - this.y) * factor;
    this.scale = next;
    this.apply();
  };

  Panel.prototype.centreOn = function (el) {
    var box = el.getBoundingClientRect(), view = this.viewport.getBoundingClientRect();
    this.x += view.left + view.width / 2 - (box.left + box.width / 2);
    this.y += view.top + view.height / 2 - (box.top + box.height / 2);
    this.apply();
  };

  Panel.prototype.bind = function () {
    var self = this, drag = null;
    this.viewport.addEventListener('wheel', function (ev) {
      ev.preventDefault();
      var r = self.viewport.getBoundingClientRect();
      self.zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    this.viewport.addEventListener('mousedown', function (ev) {
      if (ev.button !== 0) return;
      drag = { x: ev.clientX, y: ev.clientY, moved: false };
      self.viewport.classList.add('dragging');
    });
    window.addEventListener('mousemove', function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
      self.x += dx; self.y += dy; drag.x = ev.clientX; drag.y = ev.clientY;
      self.apply();
    });
    window.addEventListener('mouseup', function () {
      if (drag) self.viewport.classList.remove('dragging');
      self.lastDragMoved = drag && drag.moved;
      drag = null;
    });
    this.svg.addEventListener('click', function (ev) {
      if (self.lastDragMoved) return;
      var node = ev.target.closest('g.node');
      if (node) pick(nodeName(node), self);
    });
    this.root.querySelector('.reset').addEventListener('click', function () { self.reset(); });
    this.root.querySelector('.zoom-in').addEventListener('click', function () {
      self.zoomAt(1.25, self.viewport.clientWidth / 2, self.viewport.clientHeight / 2);
    });
    this.root.querySelector('.zoom-out').addEventListener('click', function () {
      self.zoomAt(0.8, self.viewport.clientWidth / 2, self.viewport.clientHeight / 2);
    });
  };

  Panel.prototype.find = function (name) {
    var titles = this.svg.querySelectorAll('g.node > title');
    for (var i = 0; i < titles.length; i++) {
      if (titles[i].textContent === name) return titles[i].parentNode;
    }
    return null;
  };

  function nodeName(g) {
    var t = g.querySelector('title');
    return t ? t.textContent : '';
  }

  function pick(name, origin) {
    var found = 0;
    document.querySelectorAll('g.node.picked').forEach(function (g) {
      g.classList.remove('picked');
    });
    panels.forEach(function (p) {
      var g = p.find(name);
      if (!g) return;
      found++;
      g.classList.add('picked');
      if (p !== origin) p.centreOn(g);
    });
    var status = document.querySelector('.finder .status');
    if (status) status.textContent = found ? name + ': found in ' + found + ' of ' +
      panels.length + ' graphs' : name + ': not drawn (folded, collapsed or absent)';
    return found;
  }

  function init() {
    document.querySelectorAll('.panel').forEach(function (el) { panels.push(new Panel(el)); });
    var input = document.querySelector('.finder input');
    if (input) input.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter') pick(input.value.trim(), null);
    });
    window.graphtoolReport = { panels: panels, pick: pick };
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
"""
