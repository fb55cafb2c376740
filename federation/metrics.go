package federation

import "github.com/prometheus/client_golang/prometheus"

// metrics are the bridge's collectors, on its own registry, labelled by the
// bridge's region and the feed's origin region (never by room). Metric
// names still say link (link_up): a feed is what they call a link.
type metrics struct {
	applied     *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	gaps        *prometheus.CounterVec
	restarts    *prometheus.CounterVec
	localLosses *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	sessions    *prometheus.CounterVec
	feedUp      *prometheus.GaugeVec
	lagSeconds  *prometheus.GaugeVec
	lagEvents   *prometheus.GaugeVec
	lagState    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, region string) *metrics {
	labels := prometheus.Labels{"region": region}
	o := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "geolab", Subsystem: "federation", Name: name, Help: help, ConstLabels: labels}
	}
	m := &metrics{
		applied:     prometheus.NewCounterVec(prometheus.CounterOpts(o("applied_total", "Remote events applied to this region.")), []string{"origin"}),
		duplicates:  prometheus.NewCounterVec(prometheus.CounterOpts(o("duplicates_total", "Remote events this region had already (re-reads after a crash or retry): no-ops.")), []string{"origin"}),
		localLosses: prometheus.NewCounterVec(prometheus.CounterOpts(o("local_data_lost_total", "Times this region's Redis was found to have lost its data (its data life changed): the origin's outbox was applied again from its start.")), []string{"origin"}),
		restarts:    prometheus.NewCounterVec(prometheus.CounterOpts(o("origin_restarts_total", "Times the origin's outbox was found started over (its Redis lost data): its sequences were ended in every room of this region and their subscribers told.")), []string{"origin"}),
		gaps:        prometheus.NewCounterVec(prometheus.CounterOpts(o("gaps_total", "Times events of an origin were found lost for this region (recorded as gap markers).")), []string{"origin"}),
		skipped:     prometheus.NewCounterVec(prometheus.CounterOpts(o("skipped_total", "Outbox entries not applied, by reason: not_federated, not_origin (loop prevention), malformed (refused: see rejected_total).")), []string{"origin", "reason"}),
		rejected:    prometheus.NewCounterVec(prometheus.CounterOpts(o("rejected_total", "Outbox entries refused because they break a rule of the outbox (never applied), by reason.")), []string{"origin", "reason"}),
		sessions:    prometheus.NewCounterVec(prometheus.CounterOpts(o("sessions_total", "Remote session ownership records applied, by result: won (the remote owner now) or lost (an older epoch).")), []string{"origin", "result"}),
		feedUp:      prometheus.NewGaugeVec(prometheus.GaugeOpts(o("link_up", "1 while the last read of the origin's outbox succeeded.")), []string{"origin"}),
		lagSeconds:  prometheus.NewGaugeVec(prometheus.GaugeOpts(o("lag_seconds", "Replication lag from the origin: age of the oldest event not yet applied (while the link is down: time since the last successful read).")), []string{"origin"}),
		lagEvents:   prometheus.NewGaugeVec(prometheus.GaugeOpts(o("lag_events", "Events of the origin's outbox not yet applied here (as of the last read).")), []string{"origin"}),
		lagState:    prometheus.NewGaugeVec(prometheus.GaugeOpts(o("lag_state", "0 ok, 1 warn (lag >= lag.warn), 2 alert (lag >= lag.alert).")), []string{"origin"}),
	}
	reg.MustRegister(m.applied, m.duplicates, m.gaps, m.restarts, m.localLosses, m.skipped, m.rejected, m.sessions, m.feedUp, m.lagSeconds, m.lagEvents, m.lagState)
	return m
}
