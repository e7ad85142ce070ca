package worker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// PoolStats is one broker consumer's pool in this process.
type PoolStats struct {
	Consumer string // the consumer's name (Consumer.Name)
	Durable  string // the broker consumer: Name, or Name-replay for its replays
	// Pending and InFlight are the broker's NumPending and NumAckPending
	// (across every process), last read by the autoscaler, a second ago at
	// most; LagKnown is false until the first read.
	Pending, InFlight int64
	LagKnown          bool
	Workers           int // the pool's size now
	Busy              int // handlers working on an event now
}

// Pools returns every pool's state, in consumer order.
func (w *Worker) Pools() []PoolStats {
	var out []PoolStats
	for _, c := range w.consumers {
		for _, p := range c.pools {
			p.mu.Lock()
			size, busy := p.size, p.busy
			p.mu.Unlock()
			out = append(out, PoolStats{Consumer: c.Name, Durable: p.cfg.Durable,
				Pending: p.pending.Load(), InFlight: p.ackPending.Load(), LagKnown: p.lagKnown.Load(),
				Workers: size, Busy: busy})
		}
	}
	return out
}

var (
	descPending = prometheus.NewDesc("ladle_consumer_pending",
		"Events the broker holds for the consumer, not yet delivered (JetStream NumPending).", []string{"consumer"}, nil)
	descInFlight = prometheus.NewDesc("ladle_consumer_in_flight",
		"Events delivered to the consumer's handlers in any process and not yet acknowledged (JetStream NumAckPending). Pending plus in flight is the lag KEDA scales on.", []string{"consumer"}, nil)
	descWorkers = prometheus.NewDesc("ladle_consumer_workers",
		"The consumer's pool size in this process (set by the autoscaler).", []string{"consumer"}, nil)
	descBusy = prometheus.NewDesc("ladle_consumer_busy_workers",
		"The consumer's handlers in this process working on an event now.", []string{"consumer"}, nil)
	descProcessed = prometheus.NewDesc("ladle_consumer_processed_total",
		"Events the consumer's handlers finished and acknowledged in this process.", []string{"consumer"}, nil)
	descFailed = prometheus.NewDesc("ladle_consumer_failed_total",
		"Handler failures in this process (each retried or dead-lettered).", []string{"consumer"}, nil)
	descRedelivered = prometheus.NewDesc("ladle_consumer_redelivered_total",
		"Deliveries of an event the consumer had been given before.", []string{"consumer"}, nil)
	descDead = prometheus.NewDesc("ladle_consumer_dead_lettered_total",
		"Events given up on and recorded as dead letters.", []string{"consumer"}, nil)
)

// Describe implements prometheus.Collector: register the Worker to export
// its consumers' metrics (label consumer: the broker consumer's name for the
// gauges, the Consumer's name for the counters and the latency histogram).
func (w *Worker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descInFlight, descWorkers, descBusy, descProcessed, descFailed, descRedelivered, descDead} {
		ch <- d
	}
	for _, c := range w.consumers {
		c.latency.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (w *Worker) Collect(ch chan<- prometheus.Metric) {
	for _, p := range w.Pools() {
		if p.LagKnown {
			ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(p.Pending), p.Durable)
			ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(p.InFlight), p.Durable)
		}
		ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(p.Workers), p.Durable)
		ch <- prometheus.MustNewConstMetric(descBusy, prometheus.GaugeValue, float64(p.Busy), p.Durable)
	}
	for _, c := range w.consumers {
		ch <- prometheus.MustNewConstMetric(descProcessed, prometheus.CounterValue, float64(c.handled.Load()), c.Name)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(c.failed.Load()), c.Name)
		ch <- prometheus.MustNewConstMetric(descRedelivered, prometheus.CounterValue, float64(c.redelivered.Load()), c.Name)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(c.dead.Load()), c.Name)
		c.latency.Collect(ch)
	}
}
