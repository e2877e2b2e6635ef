/* Straits: draw the page's Plotly figures (JSON in #figures) into the elements of the same ids.
   Charts in view are drawn first and the page is marked rendered; the others are drawn as they
   come near the viewport, before printing, or all at once with #all in the address. */
(function () {
  "use strict";
  var data = document.getElementById("figures");
  var figures = data ? JSON.parse(data.textContent) : {};
  /* No "Share chart..." button: Plotly's default sends the chart, the plan's data, to Plotly
     Cloud (a window on cloud.plotly.com the figure is posted to), and nothing leaves the page. */
  var config = {responsive: true, displaylogo: false, showSendToCloud: false,
                showEditInChartStudio: false, plotlyServerURL: "",
                toImageButtonOptions: {format: "png", scale: 2}};
  var drawn = {};
  function draw(id) {
    var el = document.getElementById(id);
    if (drawn[id] || !el || !window.Plotly) { return Promise.resolve(); }
    drawn[id] = true;
    return Plotly.newPlot(el, figures[id].data, figures[id].layout, config);
  }
  function drawAll() { return Promise.all(Object.keys(figures).map(draw)); }
  function near(el) {
    var r = el.getBoundingClientRect();
    return r.bottom > -300 && r.top < window.innerHeight + 300;
  }
  var ids = Object.keys(figures).filter(function (id) { return document.getElementById(id); });
  var first;
  if (location.hash === "#all" || !("IntersectionObserver" in window)) {
    first = drawAll();
  } else {
    first = Promise.all(ids.filter(function (id) {
      return near(document.getElementById(id));
    }).map(draw));
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (e.isIntersecting) { io.unobserve(e.target); draw(e.target.id); }
      });
    }, {rootMargin: "400px"});
    ids.forEach(function (id) { io.observe(document.getElementById(id)); });
    window.addEventListener("beforeprint", drawAll);
  }
  first.then(function () {
    document.body.setAttribute("data-rendered-ms", String(Math.round(performance.now())));
    document.body.setAttribute("data-rendered", "true");
  });
  window.StraitsFigures = {draw: draw, drawAll: drawAll};
})();
