package recommend

import (
	"context"
	"errors"
	"fmt"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listers "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
)

// ErrPDBsUnknown means the PodDisruptionBudgets are not known (yet).
var ErrPDBsUnknown = errors.New("PodDisruptionBudgets are not known yet")

// PDBLister follows a cluster's PodDisruptionBudgets with an informer:
// list and watch on policy/v1 poddisruptionbudgets, which the chart's
// ClusterRole grants the aggregator.
type PDBLister struct {
	factory informers.SharedInformerFactory
	synced  cache.InformerSynced
	lister  listers.PodDisruptionBudgetLister
}

// NewPDBLister returns a lister of every namespace's budgets; Run starts
// it.
func NewPDBLister(kube kubernetes.Interface) *PDBLister {
	f := informers.NewSharedInformerFactory(kube, 0)
	inf := f.Policy().V1().PodDisruptionBudgets()
	return &PDBLister{factory: f, synced: inf.Informer().HasSynced, lister: inf.Lister()}
}

// Run follows the budgets until ctx is done.
func (l *PDBLister) Run(ctx context.Context) {
	l.factory.Start(ctx.Done())
	<-ctx.Done()
	l.factory.Shutdown()
}

// Selectors implements PDBs. As in policy/v1, a budget with no selector
// selects no pod, one with an empty selector every pod of its namespace.
func (l *PDBLister) Selectors(namespace string) ([]labels.Selector, error) {
	if !l.synced() {
		return nil, ErrPDBsUnknown
	}
	pdbs, err := l.lister.PodDisruptionBudgets(namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list PodDisruptionBudgets: %w", err)
	}
	return selectors(pdbs), nil
}

func selectors(pdbs []*policyv1.PodDisruptionBudget) []labels.Selector {
	var out []labels.Selector
	for _, p := range pdbs {
		if p.Spec.Selector == nil {
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			continue // the apiserver validates selectors; an invalid one selects nothing
		}
		out = append(out, s)
	}
	return out
}
