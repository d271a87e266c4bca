// Command chartcheck checks the objects `helm template` renders from
// charts/penny, beyond what `helm lint` can see:
//
//   - every document decodes strictly into its typed object (k8s.io/api,
//     or the local types for APIService, ServiceMonitor and PrometheusRule), so an
//     unknown or misspelt field, a duplicate key or a bad quantity fails;
//     kinds it does not know fail too;
//   - every object carries the chart's standard labels, namespaced objects
//     name their namespace, and no object is rendered twice;
//   - every container has resource requests (cpu, memory), a memory limit
//     and a securityContext with a read-only root filesystem that either
//     drops ALL capabilities without privilege escalation or is explicitly
//     privileged; volume mounts name volumes, probes name ports;
//   - what refers to something else finds it: Services, the
//     PodDisruptionBudget and ServiceMonitors select a workload's pods and
//     name its ports, the StatefulSet's serviceName is a headless Service
//     that publishes not-ready addresses, bindings name rendered roles and
//     the ServiceAccounts the pods run as, APIService objects name a
//     Service port;
//   - a ConfigMap's pricing.yaml is a pricing file Penny accepts, its
//     rules.yaml the webhook's rules, its dashboards (*.json) pass Penny's
//     dashboard lint, and the alert rules (a ConfigMap's penny-alerts.yaml,
//     a PrometheusRule) hold every alert of rules/penny-alerts.yaml and
//     pass promtool check rules;
//   - the MutatingWebhookConfiguration names a rendered Service port, has
//     no side effects, a failure policy and a timeout, leaves kube-system
//     and the release's namespace alone, and its caBundle (or cert-manager
//     Certificate) is checked as the APIService's;
//   - the custom metrics API's TLS: the APIService caBundle is a CA, and a
//     serving-certificate Secret the chart made holds a key pair whose
//     certificate that CA signed for the Service's DNS name.
//
// Usage: helm template ... | go run ./hack/chartcheck [-namespace NS] [FILE...]
//
// With -values and -readme it checks the documentation instead: every value
// in values.yaml has a "# --" comment (on itself or a parent) and a row in
// the README's table of values.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/pennyhq/penny/admission"
	"github.com/pennyhq/penny/aggregator/pricing"
)

func main() {
	ns := flag.String("namespace", "penny-system", "the release namespace the chart was rendered for (helm template -n)")
	values := flag.String("values", "", "check that every value in this values.yaml is documented (with -readme)")
	readme := flag.String("readme", "", "the chart README whose table of values -values checks")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: helm template ... | chartcheck [-namespace NS] [FILE...]\n"+
			"       chartcheck -values values.yaml -readme README.md\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *values != "" || *readme != "" {
		problems, n, err := checkDocs(*values, *readme)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chartcheck: %v\n", err)
			os.Exit(1)
		}
		for _, p := range problems {
			fmt.Fprintf(os.Stderr, "chartcheck: %s\n", p)
		}
		if len(problems) > 0 {
			os.Exit(1)
		}
		fmt.Printf("chartcheck: %d values documented in %s and %s\n", n, *values, *readme)
		return
	}
	var objs []object
	read := func(name string, r io.Reader) {
		o, err := decodeAll(r)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chartcheck: %s: %v\n", name, err)
			os.Exit(1)
		}
		objs = append(objs, o...)
	}
	if flag.NArg() == 0 {
		read("stdin", os.Stdin)
	}
	for _, f := range flag.Args() {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chartcheck: %v\n", err)
			os.Exit(1)
		}
		read(f, fh)
		fh.Close()
	}
	problems := check(objs, *ns)
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "chartcheck: %s\n", p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "chartcheck: %d problems in %d objects\n", len(problems), len(objs))
		os.Exit(1)
	}
	fmt.Printf("chartcheck: %d objects ok\n", len(objs))
}

// APIService is apiregistration.k8s.io/v1 APIService (k8s.io/kube-aggregator
// is not one of Penny's modules; the spec is small and stable).
type APIService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Service *struct {
			Namespace string `json:"namespace,omitempty"`
			Name      string `json:"name,omitempty"`
			Port      *int32 `json:"port,omitempty"`
		} `json:"service,omitempty"`
		Group                 string `json:"group,omitempty"`
		Version               string `json:"version,omitempty"`
		InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify,omitempty"`
		CABundle              []byte `json:"caBundle,omitempty"`
		GroupPriorityMinimum  int32  `json:"groupPriorityMinimum"`
		VersionPriority       int32  `json:"versionPriority"`
	} `json:"spec"`
}

// ServiceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// chart uses; a field the chart adds must be added here too.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port        string `json:"port,omitempty"`
			Path        string `json:"path,omitempty"`
			HonorLabels bool   `json:"honorLabels,omitempty"`
			Scheme      string `json:"scheme,omitempty"`
			Interval    string `json:"interval,omitempty"`
			TLSConfig   *struct {
				CA struct {
					ConfigMap *corev1.ConfigMapKeySelector `json:"configMap,omitempty"`
					Secret    *corev1.SecretKeySelector    `json:"secret,omitempty"`
				} `json:"ca"`
				ServerName string `json:"serverName,omitempty"`
			} `json:"tlsConfig,omitempty"`
			Authorization *struct {
				Type        string                   `json:"type,omitempty"`
				Credentials corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
			Relabelings   []struct {
				SourceLabels []string `json:"sourceLabels,omitempty"`
				Separator    string   `json:"separator,omitempty"`
				TargetLabel  string   `json:"targetLabel,omitempty"`
				Regex        string   `json:"regex,omitempty"`
				Replacement  string   `json:"replacement,omitempty"`
				Action       string   `json:"action,omitempty"`
			} `json:"relabelings,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// Certificate is the part of cert-manager.io/v1 Certificate the chart uses
// (cert-manager is not one of Penny's modules); a field the chart adds must
// be added here too.
type Certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		SecretName  string   `json:"secretName"`
		CommonName  string   `json:"commonName,omitempty"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		IPAddresses []string `json:"ipAddresses,omitempty"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		Usages    []string `json:"usages,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// CustomResourceDefinition is apiextensions.k8s.io/v1
// CustomResourceDefinition as far as chartcheck reads it: its names and
// versions, the schema kept raw.
type CustomResourceDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Group string `json:"group"`
		Scope string `json:"scope"`
		Names struct {
			Kind       string   `json:"kind"`
			ListKind   string   `json:"listKind,omitempty"`
			Plural     string   `json:"plural"`
			Singular   string   `json:"singular,omitempty"`
			ShortNames []string `json:"shortNames,omitempty"`
			Categories []string `json:"categories,omitempty"`
		} `json:"names"`
		Versions []struct {
			Name                     string          `json:"name"`
			Served                   bool            `json:"served"`
			Storage                  bool            `json:"storage"`
			Subresources             json.RawMessage `json:"subresources,omitempty"`
			AdditionalPrinterColumns json.RawMessage `json:"additionalPrinterColumns,omitempty"`
			Schema                   json.RawMessage `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

// kinds maps apiVersion/kind to a new typed object, and says whether the
// kind is namespaced.
var kinds = map[string]struct {
	new        func() metav1.Object
	namespaced bool
}{
	"v1/ServiceAccount":                                {func() metav1.Object { return &corev1.ServiceAccount{} }, true},
	"v1/Service":                                       {func() metav1.Object { return &corev1.Service{} }, true},
	"v1/Secret":                                        {func() metav1.Object { return &corev1.Secret{} }, true},
	"v1/ConfigMap":                                     {func() metav1.Object { return &corev1.ConfigMap{} }, true},
	"apps/v1/DaemonSet":                                {func() metav1.Object { return &appsv1.DaemonSet{} }, true},
	"apps/v1/StatefulSet":                              {func() metav1.Object { return &appsv1.StatefulSet{} }, true},
	"apps/v1/Deployment":                               {func() metav1.Object { return &appsv1.Deployment{} }, true},
	"policy/v1/PodDisruptionBudget":                    {func() metav1.Object { return &policyv1.PodDisruptionBudget{} }, true},
	"networking.k8s.io/v1/NetworkPolicy":               {func() metav1.Object { return &networkingv1.NetworkPolicy{} }, true},
	"rbac.authorization.k8s.io/v1/Role":                {func() metav1.Object { return &rbacv1.Role{} }, true},
	"rbac.authorization.k8s.io/v1/RoleBinding":         {func() metav1.Object { return &rbacv1.RoleBinding{} }, true},
	"rbac.authorization.k8s.io/v1/ClusterRole":         {func() metav1.Object { return &rbacv1.ClusterRole{} }, false},
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding":  {func() metav1.Object { return &rbacv1.ClusterRoleBinding{} }, false},
	"apiregistration.k8s.io/v1/APIService":             {func() metav1.Object { return &APIService{} }, false},
	"monitoring.coreos.com/v1/ServiceMonitor":          {func() metav1.Object { return &ServiceMonitor{} }, true},
	"monitoring.coreos.com/v1/PrometheusRule":          {func() metav1.Object { return &PrometheusRule{} }, true},
	"cert-manager.io/v1/Certificate":                   {func() metav1.Object { return &Certificate{} }, true},
	"apiextensions.k8s.io/v1/CustomResourceDefinition": {func() metav1.Object { return &CustomResourceDefinition{} }, false},
	"admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": {func() metav1.Object {
		return &admissionregistrationv1.MutatingWebhookConfiguration{}
	}, false},
}

// object is one rendered document.
type object struct {
	source     string // the chart file helm names in "# Source:"
	kind       string // apiVersion/kind
	namespaced bool
	obj        metav1.Object
}

func (o object) String() string {
	k := o.kind[strings.LastIndexByte(o.kind, '/')+1:]
	if o.namespaced {
		return fmt.Sprintf("%s %s/%s (%s)", k, o.obj.GetNamespace(), o.obj.GetName(), o.source)
	}
	return fmt.Sprintf("%s %s (%s)", k, o.obj.GetName(), o.source)
}

// decodeAll reads a stream of YAML documents and decodes each strictly into
// its typed object. Documents with nothing but comments are skipped.
func decodeAll(r io.Reader) ([]object, error) {
	yr := k8syaml.NewYAMLReader(bufio.NewReader(r))
	var objs []object
	for i := 1; ; i++ {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		o, ok, err := decode(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, o.source, err)
		}
		if ok {
			objs = append(objs, o)
		}
	}
}

func decode(doc []byte) (o object, ok bool, err error) {
	o.source = "?"
	empty := true
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if s, ok := strings.CutPrefix(t, "# Source: "); ok {
			o.source = s
		}
		if t != "" && t != "---" && !strings.HasPrefix(t, "#") {
			empty = false
		}
	}
	if empty {
		return o, false, nil
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return o, false, err
	}
	o.kind = tm.APIVersion + "/" + tm.Kind
	k, known := kinds[o.kind]
	if !known {
		return o, false, fmt.Errorf("unknown kind %s: add it to chartcheck's kinds", o.kind)
	}
	o.namespaced = k.namespaced
	o.obj = k.new()
	if err := yaml.UnmarshalStrict(doc, o.obj); err != nil {
		return o, false, fmt.Errorf("%s: %w", o.kind, err)
	}
	return o, true, nil
}

// Labels every object carries (charts/penny/templates/_helpers.tpl).
var standardLabels = []string{
	"helm.sh/chart",
	"app.kubernetes.io/name",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
	"app.kubernetes.io/managed-by",
	"app.kubernetes.io/part-of",
	"app.kubernetes.io/component",
}

// workload is a pod template and the object it belongs to.
type workload struct {
	o        object
	selector *metav1.LabelSelector
	pod      corev1.PodTemplateSpec
}

func check(objs []object, ns string) []string {
	var problems []string
	bad := func(o object, format string, args ...any) {
		problems = append(problems, o.String()+": "+fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	instances := map[string]bool{}
	var workloads []workload
	services := map[string]*corev1.Service{}
	secrets := map[string]*corev1.Secret{}
	certificates := map[string]bool{} // "ns/name"
	roles := map[string]bool{}        // "ClusterRole/name", "Role/ns/name"
	for _, o := range objs {
		id := o.kind + "/" + o.obj.GetNamespace() + "/" + o.obj.GetName()
		if seen[id] {
			bad(o, "rendered twice")
		}
		seen[id] = true
		if o.obj.GetName() == "" {
			bad(o, "no metadata.name")
		}
		if o.namespaced && o.obj.GetNamespace() == "" {
			bad(o, "no metadata.namespace")
		}
		if !o.namespaced && o.obj.GetNamespace() != "" {
			bad(o, "cluster-scoped but has metadata.namespace")
		}
		for _, l := range standardLabels {
			if o.obj.GetLabels()[l] == "" {
				bad(o, "label %s missing", l)
			}
		}
		instances[o.obj.GetLabels()["app.kubernetes.io/instance"]] = true
		switch v := o.obj.(type) {
		case *appsv1.DaemonSet:
			workloads = append(workloads, workload{o, v.Spec.Selector, v.Spec.Template})
		case *appsv1.StatefulSet:
			workloads = append(workloads, workload{o, v.Spec.Selector, v.Spec.Template})
		case *appsv1.Deployment:
			workloads = append(workloads, workload{o, v.Spec.Selector, v.Spec.Template})
		case *corev1.Service:
			services[v.Namespace+"/"+v.Name] = v
		case *corev1.Secret:
			secrets[v.Namespace+"/"+v.Name] = v
		case *Certificate:
			certificates[v.Namespace+"/"+v.Name] = true
		case *corev1.ConfigMap:
			if f, ok := v.Data["pricing.yaml"]; ok {
				if _, err := pricing.Parse([]byte(f), pricing.Overrides{}); err != nil {
					bad(o, "pricing.yaml: %v", err)
				}
			}
			if f, ok := v.Data["rules.yaml"]; ok {
				if _, err := admission.ParseRules([]byte(f)); err != nil {
					bad(o, "rules.yaml: %v", err)
				}
			}
		case *rbacv1.ClusterRole:
			roles["ClusterRole/"+v.Name] = true
		case *rbacv1.Role:
			roles["Role/"+v.Namespace+"/"+v.Name] = true
		}
	}
	if len(instances) > 1 {
		problems = append(problems, fmt.Sprintf("objects of more than one release (app.kubernetes.io/instance): %v", instances))
	}

	serviceAccounts := map[string]bool{} // the ServiceAccounts pods run as, and those rendered
	for _, o := range objs {
		if sa, ok := o.obj.(*corev1.ServiceAccount); ok {
			serviceAccounts[sa.Namespace+"/"+sa.Name] = true
		}
	}
	for _, w := range workloads {
		for _, p := range checkWorkload(w) {
			bad(w.o, "%s", p)
		}
		sa := w.pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		serviceAccounts[w.o.obj.GetNamespace()+"/"+sa] = true
	}
	// podsOf returns the workloads whose pods a selector in namespace ns selects.
	podsOf := func(ns string, sel labels.Selector) []workload {
		var out []workload
		for _, w := range workloads {
			if w.o.obj.GetNamespace() == ns && !sel.Empty() && sel.Matches(labels.Set(w.pod.Labels)) {
				out = append(out, w)
			}
		}
		return out
	}

	for _, o := range objs {
		checkMonitoring(o, bad)
		switch v := o.obj.(type) {
		case *corev1.Service:
			sel := labels.SelectorFromSet(v.Spec.Selector)
			ws := podsOf(v.Namespace, sel)
			if len(ws) == 0 {
				bad(o, "selector %v selects no rendered pods", v.Spec.Selector)
			}
			for _, p := range v.Spec.Ports {
				for _, w := range ws {
					if !hasPort(w.pod.Spec, p.TargetPort) {
						bad(o, "port %s: target port %s is not a port of %s", p.Name, p.TargetPort.String(), w.o)
					}
				}
			}
		case *appsv1.StatefulSet:
			peers := services[v.Namespace+"/"+v.Spec.ServiceName]
			switch {
			case peers == nil:
				bad(o, "serviceName %q is not a rendered Service", v.Spec.ServiceName)
			case peers.Spec.ClusterIP != corev1.ClusterIPNone:
				bad(o, "serviceName %q is not headless", v.Spec.ServiceName)
			case !peers.Spec.PublishNotReadyAddresses:
				bad(o, "serviceName %q does not publish not-ready addresses: members could not find each other before a leader is elected", v.Spec.ServiceName)
			}
			if v.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
				bad(o, "podManagementPolicy must be Parallel: a lone first replica never becomes ready")
			}
		case *policyv1.PodDisruptionBudget:
			if len(selectedBy(o, v.Namespace, v.Spec.Selector, podsOf, bad)) == 0 {
				bad(o, "selects no rendered pods")
			}
		case *ServiceMonitor:
			sel, err := metav1.LabelSelectorAsSelector(&v.Spec.Selector)
			if err != nil {
				bad(o, "selector: %v", err)
				continue
			}
			var svcs []*corev1.Service
			for _, s := range services {
				if slices.Contains(v.Spec.NamespaceSelector.MatchNames, s.Namespace) && sel.Matches(labels.Set(s.Labels)) {
					svcs = append(svcs, s)
				}
			}
			if len(svcs) == 0 {
				bad(o, "selects no rendered Service")
			}
			for _, e := range v.Spec.Endpoints {
				for _, s := range svcs {
					if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
						bad(o, "endpoint port %q is not a port of Service %s", e.Port, s.Name)
					}
				}
			}
			if len(svcs) > 1 {
				bad(o, "selects %d Services: Prometheus would scrape their pods once per Service", len(svcs))
			}
		case *rbacv1.ClusterRoleBinding:
			checkBinding(o, v.RoleRef, v.Subjects, "", roles, serviceAccounts, ns, bad)
		case *rbacv1.RoleBinding:
			checkBinding(o, v.RoleRef, v.Subjects, v.Namespace, roles, serviceAccounts, ns, bad)
		case *APIService:
			checkAPIService(o, v, services, secrets, bad)
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			checkWebhooks(o, v, ns, services, secrets, certificates, bad)
		case *CustomResourceDefinition:
			if want := v.Spec.Names.Plural + "." + v.Spec.Group; v.Name != want {
				bad(o, "name must be %s", want)
			}
			storage := 0
			for _, ver := range v.Spec.Versions {
				if ver.Storage {
					storage++
				}
				if len(ver.Schema) == 0 {
					bad(o, "version %s has no schema", ver.Name)
				}
			}
			if storage != 1 {
				bad(o, "%d storage versions, want 1", storage)
			}
		}
	}
	return problems
}

func selectedBy(o object, ns string, ls *metav1.LabelSelector, podsOf func(string, labels.Selector) []workload,
	bad func(object, string, ...any)) []workload {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		bad(o, "selector: %v", err)
		return nil
	}
	return podsOf(ns, sel)
}

// checkWorkload checks a pod template and its selector.
func checkWorkload(w workload) []string {
	var problems []string
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("selector: %v", err))
	case sel.Empty():
		problems = append(problems, "empty selector")
	case !sel.Matches(labels.Set(w.pod.Labels)):
		problems = append(problems, "selector does not match the pod template's labels")
	}
	for _, l := range standardLabels {
		if w.pod.Labels[l] == "" {
			problems = append(problems, fmt.Sprintf("pod template: label %s missing", l))
		}
	}
	spec := w.pod.Spec
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	if ss, ok := w.o.obj.(*appsv1.StatefulSet); ok {
		for _, c := range ss.Spec.VolumeClaimTemplates {
			volumes[c.Name] = true
		}
	}
	containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(spec.Containers) == 0 {
		problems = append(problems, "no containers")
	}
	for _, c := range containers {
		p := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("container %s: ", c.Name)+fmt.Sprintf(format, args...))
		}
		if c.Image == "" {
			p("no image")
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			p("resources.requests must set cpu and memory")
		}
		if c.Resources.Limits.Memory().IsZero() {
			p("resources.limits must set memory")
		}
		sc := c.SecurityContext
		if sc == nil {
			p("no securityContext")
			continue
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p("securityContext.readOnlyRootFilesystem must be true")
		}
		if sc.Privileged != nil && *sc.Privileged {
			if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
				p("privileged with allowPrivilegeEscalation false: the API server refuses it")
			}
		} else {
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				p("securityContext.allowPrivilegeEscalation must be false unless privileged")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				p("securityContext.capabilities.drop must contain ALL unless privileged")
			}
			if sc.Capabilities != nil {
				for _, c := range sc.Capabilities.Add {
					if c == "SYS_ADMIN" || c == "ALL" || strings.HasPrefix(string(c), "CAP_") {
						p("capability %q: no SYS_ADMIN or ALL (use privileged), and no CAP_ prefix", c)
					}
				}
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				p("volume mount %q names no volume", m.Name)
			}
		}
		for what, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			if pr == nil {
				continue
			}
			var port *intstr.IntOrString
			switch {
			case pr.HTTPGet != nil:
				port = &pr.HTTPGet.Port
			case pr.TCPSocket != nil:
				port = &pr.TCPSocket.Port
			}
			if port != nil && port.Type == intstr.String && !hasNamedPort(c, port.StrVal) {
				p("%s probe port %q is not a port of the container", what, port.StrVal)
			}
		}
	}
	return problems
}

func hasNamedPort(c corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
}

// hasPort reports whether a pod has the port a Service's targetPort names.
func hasPort(spec corev1.PodSpec, port intstr.IntOrString) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return true
			}
		}
	}
	return false
}

// checkBinding checks that a binding names a role the chart renders (or a
// built-in one) and that its ServiceAccount subjects in the release
// namespace are ones the chart's pods run as.
func checkBinding(o object, ref rbacv1.RoleRef, subjects []rbacv1.Subject, bindingNS string, roles, serviceAccounts map[string]bool,
	releaseNS string, bad func(object, string, ...any)) {
	builtin := map[string]bool{
		"ClusterRole/system:auth-delegator":                          true,
		"Role/kube-system/extension-apiserver-authentication-reader": true,
	}
	key := "ClusterRole/" + ref.Name
	if ref.Kind == "Role" {
		key = "Role/" + bindingNS + "/" + ref.Name
	}
	if !roles[key] && !builtin[key] {
		bad(o, "roleRef %s is neither rendered nor a built-in role", key)
	}
	if len(subjects) == 0 {
		bad(o, "no subjects")
	}
	for _, s := range subjects {
		if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == releaseNS && !serviceAccounts[s.Namespace+"/"+s.Name] {
			bad(o, "subject ServiceAccount %s/%s is neither rendered nor what any rendered pod runs as", s.Namespace, s.Name)
		}
	}
}

// checkAPIService checks that an APIService names a rendered Service port,
// that its caBundle is a CA, and that a serving certificate the chart made
// matches it.
func checkAPIService(o object, a *APIService, services map[string]*corev1.Service, secrets map[string]*corev1.Secret,
	bad func(object, string, ...any)) {
	if want := a.Spec.Version + "." + a.Spec.Group; a.Name != want {
		bad(o, "name must be %s", want)
	}
	s := a.Spec.Service
	if s == nil || s.Port == nil {
		bad(o, "spec.service with a port is required")
		return
	}
	svc := services[s.Namespace+"/"+s.Name]
	if svc == nil {
		bad(o, "service %s/%s is not rendered", s.Namespace, s.Name)
		return
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == *s.Port }) {
		bad(o, "service %s has no port %d", s.Name, *s.Port)
	}
	if a.Spec.InsecureSkipTLSVerify {
		if len(a.Spec.CABundle) > 0 {
			bad(o, "caBundle with insecureSkipTLSVerify: the API server refuses it")
		}
		return
	}
	checkServingTLS(o, a.Spec.CABundle, s.Name+"."+s.Namespace+".svc", s.Namespace, secrets, bad)
}

// checkServingTLS checks that caBundle holds CAs only, and that every
// serving-certificate Secret the chart made for dns (existing Secrets are
// not rendered) holds a key pair that one of them signed for dns, and a
// ca.crt that is in the bundle.
func checkServingTLS(o object, caBundle []byte, dns, ns string, secrets map[string]*corev1.Secret, bad func(object, string, ...any)) {
	roots, err := parseCerts(caBundle)
	if err != nil {
		bad(o, "caBundle: %v", err)
		return
	}
	for _, c := range roots {
		if !c.IsCA {
			bad(o, "caBundle: %q is not a CA certificate", c.Subject.CommonName)
		}
	}
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	for _, sec := range secrets {
		if sec.Namespace != ns || sec.Type != corev1.SecretTypeTLS || sec.Data["ca.crt"] == nil {
			continue
		}
		leaf, err := parseCerts(sec.Data["tls.crt"])
		if err != nil || len(leaf) == 0 {
			bad(o, "Secret %s: tls.crt: %v", sec.Name, err)
			continue
		}
		if !slices.Contains(leaf[0].DNSNames, dns) {
			continue // another service's certificate
		}
		if !bytes.Contains(caBundle, sec.Data["ca.crt"]) {
			bad(o, "caBundle does not hold ca.crt of Secret %s", sec.Name)
		}
		if _, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"]); err != nil {
			bad(o, "Secret %s: %v", sec.Name, err)
		}
		// A year ahead: a certificate that expires soon is a problem too.
		if _, err := leaf[0].Verify(x509.VerifyOptions{DNSName: dns, Roots: pool, CurrentTime: time.Now().AddDate(1, 0, 0)}); err != nil {
			bad(o, "Secret %s: the certificate does not verify for %s: %v", sec.Name, dns, err)
		}
	}
}

// checkWebhooks checks the promises of a MutatingWebhookConfiguration:
// every webhook names a rendered Service port and a path, has no side
// effects, a failure policy and a timeout within the API server's 30 s,
// leaves kube-system and the release's namespace alone, and is trusted
// through a caBundle (checked as the APIService's) or cert-manager's CA
// injector from a rendered Certificate.
func checkWebhooks(o object, m *admissionregistrationv1.MutatingWebhookConfiguration, ns string, services map[string]*corev1.Service,
	secrets map[string]*corev1.Secret, certificates map[string]bool, bad func(object, string, ...any)) {
	for _, w := range m.Webhooks {
		s := w.ClientConfig.Service
		if s == nil || s.Port == nil || s.Path == nil || *s.Path == "" {
			bad(o, "webhook %s: clientConfig.service with a port and a path is required", w.Name)
			continue
		}
		svc := services[s.Namespace+"/"+s.Name]
		if svc == nil {
			bad(o, "webhook %s: service %s/%s is not rendered", w.Name, s.Namespace, s.Name)
		} else if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == *s.Port }) {
			bad(o, "webhook %s: service %s has no port %d", w.Name, s.Name, *s.Port)
		}
		if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
			bad(o, "webhook %s: sideEffects must be None", w.Name)
		}
		if w.FailurePolicy == nil || w.TimeoutSeconds == nil || *w.TimeoutSeconds < 1 || *w.TimeoutSeconds > 30 {
			bad(o, "webhook %s: failurePolicy and a timeoutSeconds of 1 to 30 are required", w.Name)
		}
		excluded := map[string]bool{}
		if sel := w.NamespaceSelector; sel != nil {
			for _, e := range sel.MatchExpressions {
				if e.Key == "kubernetes.io/metadata.name" && e.Operator == metav1.LabelSelectorOpNotIn {
					for _, v := range e.Values {
						excluded[v] = true
					}
				}
			}
		}
		if !excluded["kube-system"] || !excluded[ns] {
			bad(o, "webhook %s: its namespaceSelector must exclude kube-system and %s", w.Name, ns)
		}
		if len(w.ClientConfig.CABundle) == 0 {
			if from := m.Annotations["cert-manager.io/inject-ca-from"]; !certificates[from] {
				bad(o, "webhook %s: no caBundle, and cert-manager.io/inject-ca-from %q names no rendered Certificate", w.Name, from)
			}
			continue
		}
		checkServingTLS(o, w.ClientConfig.CABundle, s.Name+"."+s.Namespace+".svc", s.Namespace, secrets, bad)
	}
}

func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}
