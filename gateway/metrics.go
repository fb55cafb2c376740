package gateway

import "github.com/prometheus/client_golang/prometheus"

// metrics are a node's Prometheus collectors, registered on the node's own
// registry and labelled by region and node (never by client or room).
type metrics struct {
	connections         prometheus.Gauge
	rooms               prometheus.Gauge
	redisSubscriptions  prometheus.Gauge
	redisUp             prometheus.Gauge
	framesIn            *prometheus.CounterVec
	framesOut           prometheus.Counter
	writes              prometheus.Counter
	redisDeliveries     prometheus.Counter
	deliveriesDiscarded prometheus.Counter
	duplicatesDropped   prometheus.Counter
	gapFilled           prometheus.Counter
	redisReconnects     prometheus.Counter
	redisDataLost       prometheus.Counter
	publishSeconds      prometheus.Histogram
	notReplicated       prometheus.Counter
	sequenceRestarts    prometheus.Counter
	publishBatches      prometheus.Counter
	slowConsumers       prometheus.Counter
	resumes             *prometheus.CounterVec
	errors              *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, region, node string) *metrics {
	labels := prometheus.Labels{"region": region, "node": node}
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "geolab", Subsystem: "gateway", Name: name, Help: help, ConstLabels: labels}
	}
	m := &metrics{
		connections:         prometheus.NewGauge(prometheus.GaugeOpts(f("connections", "Open client connections."))),
		rooms:               prometheus.NewGauge(prometheus.GaugeOpts(f("rooms", "Rooms with at least one local subscriber."))),
		redisSubscriptions:  prometheus.NewGauge(prometheus.GaugeOpts(f("redis_subscriptions", "Room channels this node is subscribed to in Redis."))),
		redisUp:             prometheus.NewGauge(prometheus.GaugeOpts(f("redis_up", "1 while the Redis pub/sub link is up and every room is subscribed."))),
		framesIn:            prometheus.NewCounterVec(prometheus.CounterOpts(f("frames_in_total", "Valid client frames received, by type.")), []string{"type"}),
		framesOut:           prometheus.NewCounter(prometheus.CounterOpts(f("frames_out_total", "Frames written to clients."))),
		writes:              prometheus.NewCounter(prometheus.CounterOpts(f("writes_total", "Writes of frames to clients, one writev(2) each: frames per write is frames_out_total over this."))),
		redisDeliveries:     prometheus.NewCounter(prometheus.CounterOpts(f("redis_deliveries_total", "Pub/sub messages received from Redis (G9: per publish, the nodes hosting the room)."))),
		deliveriesDiscarded: prometheus.NewCounter(prometheus.CounterOpts(f("redis_deliveries_discarded_total", "Pub/sub messages for rooms this node does not host (wasted work: pattern mode)."))),
		duplicatesDropped:   prometheus.NewCounter(prometheus.CounterOpts(f("duplicates_dropped_total", "Events not sent because the room or client had them already."))),
		gapFilled:           prometheus.NewCounter(prometheus.CounterOpts(f("gap_filled_total", "Events read from history after a Redis reconnect."))),
		redisReconnects:     prometheus.NewCounter(prometheus.CounterOpts(f("redis_disconnects_total", "Times the Redis pub/sub link was lost."))),
		redisDataLost:       prometheus.NewCounter(prometheus.CounterOpts(f("redis_data_lost_total", "Returns of the Redis pub/sub link that found Redis had lost its data meanwhile and told the subscriptions that joined before."))),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "geolab", Subsystem: "gateway",
			Name: "publish_seconds", Help: "Time from a publish frame to Redis confirming it.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		notReplicated:    prometheus.NewCounter(prometheus.CounterOpts(f("publish_not_replicated_total", "Publishes refused (unavailable) under --durability replicated: no replica confirmed them in time."))),
		sequenceRestarts: prometheus.NewCounter(prometheus.CounterOpts(f("sequence_restarts_total", "Publishes that found their room's sequence behind what this node knew was handed out, or gone, and started it again under a new epoch: a failover or a Redis lost events that were seen."))),
		publishBatches:   prometheus.NewCounter(prometheus.CounterOpts(f("publish_batches_total", "Batches of a connection's publishes sent to Redis together (--publish-window): publishes per batch is frames_in_total{type=\"publish\"} over this."))),
		slowConsumers:    prometheus.NewCounter(prometheus.CounterOpts(f("slow_consumer_disconnects_total", "Clients cut because their send queue filled (close 4001)."))),
		resumes:          prometheus.NewCounterVec(prometheus.CounterOpts(f("resumes_total", "Subscribes with since, by recovered.")), []string{"recovered"}),
		errors:           prometheus.NewCounterVec(prometheus.CounterOpts(f("errors_total", "Error frames and refused connections, by code.")), []string{"code"}),
	}
	reg.MustRegister(m.connections, m.rooms, m.redisSubscriptions, m.redisUp, m.framesIn, m.framesOut, m.writes,
		m.redisDeliveries, m.deliveriesDiscarded, m.duplicatesDropped, m.gapFilled, m.redisReconnects, m.redisDataLost,
		m.publishSeconds, m.notReplicated, m.sequenceRestarts, m.publishBatches, m.slowConsumers, m.resumes, m.errors)
	return m
}
