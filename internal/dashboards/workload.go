package dashboards

// pods selects the pods of the namespace and pod variables.
var pods = []string{`namespace="$namespace"`, `pod=~"$pod"`}

func workloadDashboard() *board {
	d := newDashboard("penny-workload", "Penny / Workload",
		"A namespace's pods as the kernel sees them: memory (RSS, page cache) against the request, CPU against the request "+
			"and its throttling, TCP latency, page cache hit ratio, network bytes and what each pod costs per hour.")
	d.WithVariable(queryVariable("namespace", "Namespace", "The pods' namespace.",
		`label_values(penny_container_info{`+cluster+`}, namespace)`))
	d.WithVariable(queryVariable("pod", "Pod", "The pods shown; All: every pod of the namespace.",
		`label_values(penny_container_info{`+cluster+`, namespace="$namespace"}, pod)`).
		Multi(true).IncludeAll(true).AllValue(".+"))
	d.add("Memory and CPU",
		panel{title: "Memory: RSS, page cache and request", unit: "bytes",
			description: "Per pod: resident memory of its containers' processes, the file page cache charged to them, and their memory request. " +
				"Page cache is reclaimable; RSS above the request is what gets a pod evicted first.",
			queries: []query{
				q(byPod("sum", "penny_container_memory_rss_bytes"+sel(), pods...), "{{pod}} RSS"),
				q(byPod("sum", "penny_container_page_cache_bytes"+sel(), pods...), "{{pod}} page cache"),
				q(byPod("sum", "penny_container_memory_request_bytes"+sel(), pods...), "{{pod}} request"),
			}},
		panel{title: "CPU: usage and request", unit: "short",
			description: "Per pod, in cores: CPU time its containers used per second, and their CPU request.",
			queries: []query{
				q(byPod("sum", rate("penny_container_cpu_usage_seconds_total", sel()), pods...), "{{pod}} usage"),
				q(byPod("sum", "penny_container_cpu_request_cores"+sel(), pods...), "{{pod}} request"),
			}},
		panel{title: "CPU throttling", unit: "percentunit",
			description: "Per pod: the share of its CPU limit's enforcement periods at whose end a container was throttled, " +
				"the container most throttled. Zero when the pods have no CPU limit or are not held back by it.",
			queries: []query{q(byPod("max", rate("penny_container_cpu_cfs_throttled_periods_total", sel())+" / "+
				rate("penny_container_cpu_cfs_periods_total", sel()), pods...), "{{pod}}")}},
		panel{title: "Page cache hit ratio", unit: "percentunit",
			description: "Per pod: the share of page cache lookups that found the page over the agent's last interval, " +
				"the pod's lowest container; absent while the pods read no files.",
			queries: []query{q(byPod("min", "penny_container_page_cache_hit_ratio"+sel(), pods...), "{{pod}}")}},
	)
	d.add("Network",
		panel{title: "TCP smoothed RTT p99", unit: "s",
			description: "Per pod: the 99th percentile of its sockets' smoothed round-trip time over the agent's last interval " +
				"(from the kernel's tcp_probe), the pod's worst container; absent while the pods send nothing over TCP.",
			queries: []query{q(byPod("max", "penny_container_tcp_srtt_p99_seconds"+sel(), pods...), "{{pod}}")}},
		panel{title: "TCP connect p99", unit: "s",
			description: "Per pod: the 99th percentile of the time its outgoing TCP connections took to establish over the agent's " +
				"last interval, the pod's worst container; absent while the pods open no connections.",
			queries: []query{q(byPod("max", "penny_container_tcp_connect_p99_seconds"+sel(), pods...), "{{pod}}")}},
		panel{title: "Network bytes", unit: "Bps", signed: true,
			description: "Per pod: IP bytes received and sent per second (negative: sent).",
			queries: []query{
				q(byPod("sum", rate("penny_container_network_receive_bytes_total", sel()), pods...), "{{pod}} received"),
				q("-"+byPod("sum", rate("penny_container_network_transmit_bytes_total", sel()), pods...), "{{pod}} sent"),
			}},
		panel{title: "Cost per hour", unit: "currencyUSD",
			description: "Per pod: max(request, usage) of CPU and memory, and egress, at its node's prices, per hour." + costNote,
			queries:     []query{q(dedup("cluster, namespace, pod", "penny_pod_cost_dollars_per_hour"+sel(pods...)), "{{pod}}")}},
	)
	d.add("Requests",
		panel{title: "Requests per second", unit: "reqps",
			description: "Per pod: the requests its containers' server sockets answered per second, counted in the kernel " +
				"(HTTP/1 request lines, HTTP/2 and gRPC streams, request/response turns of other protocols; docs/requests.md). " +
				"Absent for pods that serve nothing over TCP.",
			queries: []query{q(byPod("sum", rate("penny_container_requests_total", sel()), pods...), "{{pod}}")}},
		panel{title: "Request latency p99", unit: "s",
			description: "Per pod: the 99th percentile of its requests' latency, first byte in to first byte of the response out, " +
				"over the agent's last interval, the pod's worst container, and the latency objective of the namespace's " +
				"CostPolicies. Absent while the pods answer no request.",
			queries: []query{
				q(byPod("max", "penny_container_request_latency_p99_seconds"+sel(), pods...), "{{pod}}"),
				q(dedup("cluster, namespace, costpolicy", "penny_costpolicy_objective_seconds"+
					sel(`namespace="$namespace"`, `metric="request_latency_p99_seconds"`)), "{{costpolicy}} objective"),
			}},
		panel{title: "Cost per 1,000 requests", unit: "currencyUSD",
			description: "Per pod: its cost per hour over its requests per second (times 3.6), as they went over the agents' last " +
				"interval; a pod that serves more for the same cost is cheaper per request. Absent while the pods answer no request." + costNote,
			queries: []query{q(dedup("cluster, namespace, pod", "penny_pod_cost_per_1k_requests"+sel(pods...)), "{{pod}}")}},
		panel{title: "Replicas decided", unit: "short",
			description: "Per CostPolicy of the namespace: the replicas its last decision asked its target for, which the " +
				"target's HPA reads as penny_desired_replicas (docs/scaling.md); the reason is in " +
				"penny_costpolicy_decision_reason and in the policy's Decided condition. Absent without cost policies.",
			queries: []query{q(dedup("cluster, namespace, costpolicy, target_kind, target_name",
				"penny_costpolicy_desired_replicas"+sel(`namespace="$namespace"`)), "{{costpolicy}}: {{target_kind}} {{target_name}}")}},
	)
	return d
}
