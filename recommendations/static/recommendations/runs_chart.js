// Chart of the training runs' test figures (admin change list of TrainingRun).
(function () {
  "use strict";
  var source = document.getElementById("recs-runs-data");
  var canvas = document.getElementById("recs-runs-chart");
  if (!source || !canvas || typeof Chart === "undefined") { return; }
  var runs = JSON.parse(source.textContent);
  var labels = runs.map(function (r) { return "#" + r.pk + " " + r.started_at.slice(0, 16).replace("T", " "); });
  function series(name, key, color, dashed) {
    return {
      label: name,
      data: runs.map(function (r) { return r[key]; }),
      borderColor: color,
      backgroundColor: color,
      borderDash: dashed ? [6, 4] : [],
      tension: 0.2,
      spanGaps: true
    };
  }
  new Chart(canvas, {
    type: "line",
    data: {
      labels: labels,
      datasets: [
        series("precision@k", "precision", "#2563eb", false),
        series("recall@k", "recall", "#16a34a", false),
        series("MAP@k", "map", "#9333ea", false),
        series("NDCG@k", "ndcg", "#ea580c", false),
        series("coverage", "coverage", "#64748b", false),
        series("popularity precision@k", "baseline_precision", "#2563eb", true),
        series("popularity NDCG@k", "baseline_ndcg", "#ea580c", true)
      ]
    },
    options: {
      animation: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: "test figure" } } },
      plugins: { legend: { position: "bottom" } }
    }
  });
})();
