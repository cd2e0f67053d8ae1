// Package metrics defines authserver's Prometheus metrics. One Metrics value
// is created in run with its own registry and passed to whoever records; no
// default registry, no package-level collectors. No label ever carries a user
// id, token or key: labels are routes, methods, codes, application keys,
// store names and fixed reason strings.
package metrics

import (
	"context"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector authserver exports.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests         *prometheus.CounterVec
	HTTPDuration         *prometheus.HistogramVec
	CredentialsIssued    *prometheus.CounterVec
	CredentialsRefused   *prometheus.CounterVec
	StoreDuration        *prometheus.HistogramVec
	StoreBatchSize       prometheus.Histogram
	StoreErrors          *prometheus.CounterVec
	AuthFailures         *prometheus.CounterVec
	RateLimited          *prometheus.CounterVec
	JWKSRefresh          *prometheus.CounterVec
	BuildInfo            *prometheus.GaugeVec
	ConfigReload         *prometheus.CounterVec
	TLSCertificateExpiry prometheus.Gauge
}

// BuildInfo identifies the running binary.
type BuildInfo struct {
	Version, Revision string
}

// New creates the collectors and registers them, with the Go runtime and
// process collectors, on a fresh registry.
func New(build BuildInfo) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		HTTPRequests: counterVec("authserver_http_requests_total",
			"HTTP requests served, by route pattern, method and status code.", "route", "method", "code"),
		HTTPDuration: histogramVec("authserver_http_request_duration_seconds",
			"Time to serve an HTTP request, by route pattern and method.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}, "route", "method"),
		CredentialsIssued: counterVec("authserver_credentials_issued_total",
			"Registration credentials issued, by application and kind (jwt or signature).", "application", "kind"),
		CredentialsRefused: counterVec("authserver_credentials_refused_total",
			"Credential requests refused, by reason.", "reason"),
		StoreDuration: histogramVec("authserver_sequence_store_duration_seconds",
			"Time of one sequence store commit (one batch), by store.",
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}, "store"),
		StoreBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "authserver_sequence_batch_size",
			Help:    "Sequence requests committed together in one store statement.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		StoreErrors: counterVec("authserver_sequence_store_errors_total",
			"Failed sequence store commits, by store.", "store"),
		AuthFailures: counterVec("authserver_auth_failures_total",
			"Requests whose caller could not be authenticated, by reason.", "reason"),
		RateLimited: counterVec("authserver_rate_limited_total",
			"Requests refused by a rate limit, by scope (user, ip, failed_auth, api_key).", "scope"),
		JWKSRefresh: counterVec("authserver_jwks_refresh_total",
			"Identity provider key set refreshes, by provider issuer and result.", "provider", "result"),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authserver_build_info",
			Help: "Build information; the value is always 1.",
		}, []string{"version", "revision", "goversion"}),
		ConfigReload: counterVec("authserver_config_reload_total",
			"Configuration and certificate reloads, by result (success or error).", "result"),
		TLSCertificateExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authserver_tls_certificate_expiry_timestamp_seconds",
			Help: "NotAfter of the serving TLS certificate, as a Unix timestamp; 0 without TLS.",
		}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPDuration, m.CredentialsIssued, m.CredentialsRefused,
		m.StoreDuration, m.StoreBatchSize, m.StoreErrors, m.AuthFailures, m.RateLimited,
		m.JWKSRefresh, m.BuildInfo, m.ConfigReload, m.TLSCertificateExpiry,
	)
	m.BuildInfo.WithLabelValues(build.Version, build.Revision, runtime.Version()).Set(1)
	// Make the reload counters visible before the first reload.
	m.ConfigReload.WithLabelValues("success")
	m.ConfigReload.WithLabelValues("error")
	return m
}

// Dependency exports authserver_dependency_up{dependency=name}: 1 while
// check passes, 0 while it fails, asked at each scrape (within 2 s), so an
// outage of a shared dependency shows even when no request needs it.
func (m *Metrics) Dependency(name string, check func(context.Context) error) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "authserver_dependency_up",
		Help:        "Whether a shared dependency (sequence_store, identity_providers) answers: 1 or 0, checked at each scrape.",
		ConstLabels: prometheus.Labels{"dependency": name},
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if check(ctx) != nil {
			return 0
		}
		return 1
	}))
}

// ObserveBatch records one sequence store commit.
func (m *Metrics) ObserveBatch(store string, size int, d time.Duration, err error) {
	m.StoreDuration.WithLabelValues(store).Observe(d.Seconds())
	m.StoreBatchSize.Observe(float64(size))
	if err != nil {
		m.StoreErrors.WithLabelValues(store).Inc()
	}
}

// counterVec is a counter named name, with help and labels.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// histogramVec is a histogram named name, with help, buckets and labels.
func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}
