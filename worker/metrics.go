package worker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The per-worker metrics, labelled by slot (a group of cameras keeps its
// slot when its process is replaced, so a restart shows as a counter step,
// not as a new series).
var (
	descRestarts = prometheus.NewDesc("buddyrec_worker_restarts_total",
		"Times the worker process of this slot exited, crashed or hung and was restarted.", []string{"worker"}, nil)
	descRSS = prometheus.NewDesc("buddyrec_worker_resident_bytes",
		"Resident memory of the worker process of this slot.", []string{"worker"}, nil)
	descCPU = prometheus.NewDesc("buddyrec_worker_cpu_seconds_total",
		"CPU time (user + system) of the current worker process of this slot.", []string{"worker"}, nil)
	descCameras = prometheus.NewDesc("buddyrec_worker_cameras",
		"Cameras recorded by the worker process of this slot.", []string{"worker"}, nil)
)

// Describe implements prometheus.Collector.
func (p *Pool) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRestarts, descRSS, descCPU, descCameras} {
		ch <- d
	}
}

// Collect implements prometheus.Collector from the figures the heartbeat
// last read: a scrape never asks a worker anything.
func (p *Pool) Collect(ch chan<- prometheus.Metric) {
	for _, w := range p.Workers() {
		l := strconv.Itoa(w.Slot)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(w.Restarts), l)
		ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(w.RSS), l)
		ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, w.CPU.Seconds(), l)
		ch <- prometheus.MustNewConstMetric(descCameras, prometheus.GaugeValue, float64(len(w.Cameras)), l)
	}
}
