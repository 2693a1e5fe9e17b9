/* Histograms for GET /metrics (see metrics.h). */
#include <time.h>

#include <event2/buffer.h>

#include "core/metrics.h"

const double wg_hist_latency[WG_HIST_LATENCY_N] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1,    2.5,   10};
const double wg_hist_connect[WG_HIST_CONNECT_N] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60, 120};

void
wg_hist_observe_ns(struct wg_hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i = 0;
	while (i < h->n && s > h->bounds[i])
		i++;
	wg_count(&h->counts[i], 1);
	wg_count(&h->sum_ns, ns);
	wg_count(&h->total, 1);
}

uint64_t
wg_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
wg_hist_write(struct evbuffer *b, const char *name, const char *labels, const struct wg_hist *h)
{
	const char *sep = labels && labels[0] ? "," : "";
	const char *lab = labels ? labels : "";
	uint64_t cum = 0;
	for (size_t i = 0; i <= h->n; i++) {
		cum += wg_count_read(&h->counts[i]);
		if (i < h->n)
			evbuffer_add_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lab, sep,
			                    h->bounds[i], (unsigned long long)cum);
		else
			evbuffer_add_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lab, sep,
			                    (unsigned long long)cum);
	}
	const char *open = labels && labels[0] ? "{" : "";
	const char *close = labels && labels[0] ? "}" : "";
	evbuffer_add_printf(b, "%s_sum%s%s%s %.9f\n", name, open, lab, close,
	                    (double)wg_count_read(&h->sum_ns) / 1e9);
	evbuffer_add_printf(b, "%s_count%s%s%s %llu\n", name, open, lab, close,
	                    (unsigned long long)wg_count_read(&h->total));
}
