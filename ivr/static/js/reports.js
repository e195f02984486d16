// The reports page's chart: offered, answered and abandoned per group.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const rows = data.by || [];
  new window.Chart(document.getElementById("by-chart"), {
    type: "bar",
    data: {
      labels: rows.map((r) => r.key),
      datasets: [
        { label: "offered", data: rows.map((r) => r.offered) },
        { label: "answered", data: rows.map((r) => r.answered) },
        { label: "abandoned", data: rows.map((r) => r.abandoned) },
      ],
    },
    options: { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
})();
