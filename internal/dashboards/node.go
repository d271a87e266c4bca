package dashboards

// onNode selects the containers and series of the node variable.
var onNode = []string{`node=~"$node"`}

func nodeDashboard() *board {
	d := newDashboard("penny-node", "Penny / Node",
		"A node's pods' memory and page cache, their page cache hit ratio, and what the node costs and leaves idle.")
	d.WithVariable(queryVariable("node", "Node", "The node.", `label_values(penny_node_info{`+cluster+`}, node)`))
	d.add("Pods",
		panel{title: "Pods' memory (RSS)", unit: "bytes",
			description: "Resident memory of each pod's containers on the node.",
			queries:     []query{q(byPod("sum", "penny_container_memory_rss_bytes"+sel(onNode...), onNode...), "{{namespace}}/{{pod}}")}},
		panel{title: "Pods' page cache", unit: "bytes",
			description: "File page cache charged to each pod's containers on the node: reclaimable, and what keeps their reads fast.",
			queries:     []query{q(byPod("sum", "penny_container_page_cache_bytes"+sel(onNode...), onNode...), "{{namespace}}/{{pod}}")}},
		panel{title: "Page cache hit ratio", unit: "percentunit",
			description: "Each pod's lowest container page cache hit ratio over the agent's last interval; absent for pods that read no files.",
			queries:     []query{q(byPod("min", "penny_container_page_cache_hit_ratio"+sel(onNode...), onNode...), "{{namespace}}/{{pod}}")}},
	)
	d.add("Price",
		panel{title: "Node cost and idle per hour", unit: "currencyUSD",
			description: "What the node costs per hour at its price (allocatable CPU and memory), and the part of it that no container is charged." + costNote,
			queries: []query{
				q(dedup("cluster, node", "penny_node_cost_dollars_per_hour"+sel(onNode...)), "{{node}} cost"),
				q(dedup("cluster, node", "penny_node_idle_cost_dollars_per_hour"+sel(onNode...)), "{{node}} idle"),
			}},
		panel{title: "Pods' cost per hour", unit: "currencyUSD",
			description: "What each pod on the node costs per hour." + costNote,
			queries:     []query{q(dedup("cluster, namespace, pod", "penny_pod_cost_dollars_per_hour"+sel(onNode...)), "{{namespace}}/{{pod}}")}},
	)
	return d
}
