package outbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backlogger reports the events waiting in the outbox (sqlstore.Store
// implements it).
type Backlogger interface {
	OutboxBacklog(ctx context.Context) (n int, oldest time.Time, err error)
}

var (
	descBacklog = prometheus.NewDesc("ladle_outbox_backlog",
		"Events committed to the outbox and not yet published to the broker.", nil, nil)
	descOldest = prometheus.NewDesc("ladle_outbox_oldest_unpublished_age_seconds",
		"Age of the oldest unpublished outbox event (0 when none wait).", nil, nil)
	descPublished = prometheus.NewDesc("ladle_outbox_published_total",
		"Events this process's relay published and marked published.", nil, nil)
	descFailures = prometheus.NewDesc("ladle_outbox_relay_failures_total",
		"Relay rounds that failed (broker or database unavailable).", nil, nil)
)

// Collector exports the outbox's backlog (read from the database at each
// scrape, bounded by a 1 s deadline: a scrape while the database is down
// reports the relay counters only) and the relay's counters.
type Collector struct {
	Relay   *Relay
	Backlog Backlogger
	Now     func() time.Time // default time.Now
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBacklog
	ch <- descOldest
	ch <- descPublished
	ch <- descFailures
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if n, oldest, err := c.Backlog.OutboxBacklog(ctx); err == nil {
		age := 0.0
		if n > 0 && !oldest.IsZero() {
			now := time.Now
			if c.Now != nil {
				now = c.Now
			}
			age = max(0, now().Sub(oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age)
	}
	st := c.Relay.Stats()
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(st.Published))
	ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(st.Failures))
}
