package menucache

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counters are the cache's numbers; Stats reads them, and the Prometheus
// collector exports them on every scrape.
type counters struct {
	requests, hits, misses                  atomic.Int64
	rebuilds, versionLoads                  atomic.Int64
	redisHits, redisMisses, redisErrors     atomic.Int64
	invalidationsLocal, invalidationsRemote atomic.Int64
}

// Stats is a snapshot of the cache's counters since New.
type Stats struct {
	Requests int64 // Document calls
	Hits     int64 // served from memory at once
	Misses   int64 // not in memory: waited for a load (their own or a shared one)
	// Rebuilds counts documents built from the store; concurrent misses of
	// one key share one rebuild.
	Rebuilds     int64
	VersionLoads int64 // MenuVersion queries (misses and background refreshes)
	RedisHits    int64
	RedisMisses  int64
	RedisErrors  int64
	// InvalidationsLocal counts Invalidate calls; InvalidationsRemote counts
	// invalidations received from other processes (and Forget calls).
	InvalidationsLocal  int64
	InvalidationsRemote int64
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Requests: c.st.requests.Load(), Hits: c.st.hits.Load(), Misses: c.st.misses.Load(),
		Rebuilds: c.st.rebuilds.Load(), VersionLoads: c.st.versionLoads.Load(),
		RedisHits: c.st.redisHits.Load(), RedisMisses: c.st.redisMisses.Load(), RedisErrors: c.st.redisErrors.Load(),
		InvalidationsLocal: c.st.invalidationsLocal.Load(), InvalidationsRemote: c.st.invalidationsRemote.Load(),
	}
}

var (
	descLookups = prometheus.NewDesc("ladle_menucache_lookups_total",
		"Menu document lookups by tier (memory, redis) and result (hit, miss, error).", []string{"tier", "result"}, nil)
	descRebuilds = prometheus.NewDesc("ladle_menucache_rebuilds_total",
		"Menu documents built from the database.", nil, nil)
	descVersionLoads = prometheus.NewDesc("ladle_menucache_version_loads_total",
		"Menu version queries to the database.", nil, nil)
	descInvalidations = prometheus.NewDesc("ladle_menucache_invalidations_total",
		"Menu invalidations by origin (local: an edit here; remote: from the bus).", []string{"origin"}, nil)
	descBytes = prometheus.NewDesc("ladle_menucache_memory_weight",
		"Weighted size of the in-memory document tier (about 3 bytes per encoded byte).", nil, nil)
)

// collector exports the counters without a second copy of them.
type collector struct{ c *Cache }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLookups
	ch <- descRebuilds
	ch <- descVersionLoads
	ch <- descInvalidations
	ch <- descBytes
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	s := k.c.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descLookups, s.Hits, "memory", "hit")
	counter(descLookups, s.Misses, "memory", "miss")
	counter(descLookups, s.RedisHits, "redis", "hit")
	counter(descLookups, s.RedisMisses, "redis", "miss")
	counter(descLookups, s.RedisErrors, "redis", "error")
	counter(descRebuilds, s.Rebuilds)
	counter(descVersionLoads, s.VersionLoads)
	counter(descInvalidations, s.InvalidationsLocal, "local")
	counter(descInvalidations, s.InvalidationsRemote, "remote")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(k.c.docs.WeightedSize()))
}
