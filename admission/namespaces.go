package admission

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Namespaces gives namespaces from an informer's cache, and from the API
// server for one the cache does not have yet: a namespace created a moment
// before its first pod.
type Namespaces struct {
	client kubernetes.Interface
	lister corelisters.NamespaceLister
	synced cache.InformerSynced
}

// NewNamespaces starts watching namespaces until ctx is done; it waits up
// to wait for the first list (reads go to the API server until then).
func NewNamespaces(ctx context.Context, client kubernetes.Interface, wait time.Duration) *Namespaces {
	f := informers.NewSharedInformerFactory(client, 0)
	inf := f.Core().V1().Namespaces()
	n := &Namespaces{client: client, lister: inf.Lister(), synced: inf.Informer().HasSynced}
	f.Start(ctx.Done())
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cache.WaitForCacheSync(wctx.Done(), n.synced)
	return n
}

// Namespace returns the namespace called name.
func (n *Namespaces) Namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	if n.synced() {
		ns, err := n.lister.Get(name)
		if err == nil {
			return ns, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	ns, err := n.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	return ns, nil
}
