package auth

import "github.com/prometheus/client_golang/prometheus"

var (
	descSlots    = prometheus.NewDesc("ladle_login_hash_slots", "Password hashes allowed at once.", nil, nil)
	descInFlight = prometheus.NewDesc("ladle_login_hashes_in_flight", "Password hashes running now.", nil, nil)
	descBusy     = prometheus.NewDesc("ladle_login_hash_busy_total", "Sign-ins refused (429) because every hash slot was taken.", nil, nil)
	descLimited  = prometheus.NewDesc("ladle_login_rate_limited_total", "Sign-ins refused (429) by a failure limit, before any hash.", nil, nil)
)

// Describe implements prometheus.Collector: register the Manager to export
// its hash slots and refusals.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSlots
	ch <- descInFlight
	ch <- descBusy
	ch <- descLimited
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	st := m.HashStats()
	ch <- prometheus.MustNewConstMetric(descSlots, prometheus.GaugeValue, float64(st.Slots))
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(descBusy, prometheus.CounterValue, float64(st.Busy))
	ch <- prometheus.MustNewConstMetric(descLimited, prometheus.CounterValue, float64(st.Limited))
}
