// The report's chart: uPlot over the data the page put in <script id="chart-data">
// (analytics.report._chart_data: x = bucket starts in Unix seconds, one series per metric).
// Every bucket of the window is a point, zeros included; dates and values show on hover, and
// the legend shows the latest bucket's while the pointer is elsewhere (not an empty "–" row).
(function () {
  "use strict";
  var holder = document.getElementById("chart");
  var source = document.getElementById("chart-data");
  if (!holder || !source || typeof uPlot === "undefined") return;
  var data = JSON.parse(source.textContent);
  var tz = data.tz || "UTC";
  var hourly = data.precision === "hour";
  var number = new Intl.NumberFormat("en");
  var dateFormat = new Intl.DateTimeFormat("en-CA", hourly
    ? {timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false}
    : {timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit"});
  function dateText(seconds) { return seconds == null ? "" : dateFormat.format(new Date(seconds * 1000)); }
  var last = data.x.length - 1;
  // uPlot asks with idx null when no bucket is under the pointer: answer the latest bucket's.
  function at(values, v, idx) { return idx == null && last >= 0 ? values[last] : v; }
  var series = [{label: hourly ? "Hour" : "Day",
                 value: function (u, v, i, idx) { return dateText(at(data.x, v, idx)); }}];
  data.series.forEach(function (s) {
    // width and dash from the page (analytics.report._CHART_LINES): a wide line drawn first,
    // thinner dashed ones over it, so equal counts do not hide one another
    series.push({label: s.label, stroke: s.color, width: s.width || 2, dash: s.dash || [],
                 points: {show: true, size: s.width > 2 ? 9 : 6, fill: s.color},
                 value: function (u, v, i, idx) { var n = at(s.values, v, idx); return n == null ? "–" : number.format(n); }});
  });
  var xLabel = (hourly ? "Hour" : "Date") + " (" + tz + ")";
  var yLabel = "Messages / events per " + data.precision;
  var xTicks = [];
  // As wide as its box (which the page's CSS keeps within the window), whenever the window
  // changes: a chart drawn at its first width would stick out of a narrowed window, legend and all.
  function fit() {
    var style = getComputedStyle(holder);
    var inner = holder.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return Math.max(200, Math.floor(inner || 1000));
  }
  var options = {
    width: fit(),
    height: 320,
    tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), tz); },
    scales: {x: {time: true}, y: {range: function (u, min, max) { return [0, Math.max(4, max * 1.1)]; }}},
    axes: [
      {label: xLabel, space: hourly ? 120 : 90,
       values: function (u, splits) { xTicks = splits.map(dateText); return xTicks; }},
      {label: yLabel, values: function (u, splits) { return splits.map(function (v) { return number.format(v); }); }},
    ],
    series: series,
    padding: [16, 48, 0, 0],
    cursor: {points: {size: 8}},
  };
  // A few days: a label on each day, or on every n-th day when the chart is too narrow for all.
  if (!hourly && data.x.length <= 14) options.axes[0].splits = function (u) {
    var step = Math.ceil(data.x.length * 90 / Math.max(1, u.bbox.width / uPlot.pxRatio));
    return data.x.filter(function (x, i) { return (last - i) % step === 0; });
  };
  var plot = new uPlot(options, [data.x].concat(data.series.map(function (s) { return s.values; })), holder);
  var pending = 0;
  function refit() {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(function () {
      var width = fit();
      if (width !== plot.width) plot.setSize({width: width, height: options.height});
    });
  }
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(refit).observe(holder);
  window.addEventListener("resize", refit);
  // For the page's browser test: the axis titles, the x tick labels drawn, and where bucket i is.
  window.engageReportChart = {
    axes: [xLabel, yLabel],
    ticks: function () { return xTicks.slice(); },
    x: function (i) { return plot.valToPos(data.x[i], "x"); },
  };
})();
