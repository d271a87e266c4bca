package cost

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Allocation is what one aggregate (a container, a namespace, the idle of
// a node, ...) was allocated and cost over a window, with OpenCost's
// fields: its JSON is what OpenCost's /allocation returns for one entry.
type Allocation struct {
	Name       string
	Properties Properties
	// Window is the set's window; Start and End bound the data in it (a
	// pod that ran one hour of a day has a one-hour Start..End).
	Window     Window
	Start, End time.Time

	// CPUCoreHours is what was charged: max(request, usage) core-hours,
	// plus shared idle. The averages are over Start..End.
	CPUCoreHours          float64
	CPUCoreRequestAverage float64
	CPUCoreUsageAverage   float64
	// CPUCost includes CPUCostIdle, the idle cost shared to it.
	CPUCost     float64
	CPUCostIdle float64

	RAMByteHours           float64
	RAMBytesRequestAverage float64
	RAMBytesUsageAverage   float64
	RAMCost                float64
	RAMCostIdle            float64

	// NetworkTransferBytes is the egress to the internet and in-cluster;
	// NetworkCost prices both, NetworkInternetCost the internet part.
	NetworkTransferBytes float64
	NetworkCost          float64
	NetworkInternetCost  float64

	// Requests is how many requests the aggregate's containers answered
	// (a Penny extension; 0 for idle).
	Requests float64
}

// Minutes is End - Start in minutes.
func (a *Allocation) Minutes() float64 { return a.End.Sub(a.Start).Minutes() }

// CPUCores is the average cores charged over Start..End.
func (a *Allocation) CPUCores() float64 {
	if m := a.Minutes(); m > 0 {
		return a.CPUCoreHours / (m / 60)
	}
	return 0
}

// RAMBytes is the average bytes charged over Start..End.
func (a *Allocation) RAMBytes() float64 {
	if m := a.Minutes(); m > 0 {
		return a.RAMByteHours / (m / 60)
	}
	return 0
}

// TotalCost is CPU, memory and network cost.
func (a *Allocation) TotalCost() float64 { return a.CPUCost + a.RAMCost + a.NetworkCost }

// efficiency is OpenCost's: usage over request; 1 with usage and cost but
// no request; 0 without usage or cost.
func efficiency(usage, request, cost float64) float64 {
	if request > 0 {
		return usage / request
	}
	if usage == 0 || cost == 0 {
		return 0
	}
	return 1
}

// CPUEfficiency is usage over request (it exceeds 1 when usage is above
// the request), 1 for usage without a request, 0 without usage.
func (a *Allocation) CPUEfficiency() float64 {
	return efficiency(a.CPUCoreUsageAverage, a.CPUCoreRequestAverage, a.CPUCost)
}

// RAMEfficiency is CPUEfficiency for memory.
func (a *Allocation) RAMEfficiency() float64 {
	return efficiency(a.RAMBytesUsageAverage, a.RAMBytesRequestAverage, a.RAMCost)
}

// TotalEfficiency weighs CPU and memory efficiency by their cost; 0
// without cost.
func (a *Allocation) TotalEfficiency() float64 {
	if c := a.CPUCost + a.RAMCost; c > 0 {
		return (a.CPUEfficiency()*a.CPUCost + a.RAMEfficiency()*a.RAMCost) / c
	}
	return 0
}

// CostPer1kRequests is TotalCost per 1,000 requests; ok is false without
// requests (idle, or a workload that answered none), where it has no
// meaning.
func (a *Allocation) CostPer1kRequests() (v float64, ok bool) {
	if !(a.Requests > 0) {
		return 0, false
	}
	return a.TotalCost() / a.Requests * 1000, true
}

// IsIdle reports whether a is an idle allocation.
func (a *Allocation) IsIdle() bool { return strings.HasSuffix(a.Name, IdleSuffix) }

// round rounds a response value to 6 decimals (a millionth of a dollar, a
// millionth of a core); NaN and infinities become null, as in OpenCost.
func round(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	r := math.Round(f*1e6) / 1e6
	if math.IsInf(r, 0) || math.IsNaN(r) { // |f| > 1.8e302
		r = f
	}
	return &r
}

func val(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// allocationJSON is OpenCost's AllocationJSON field for field, in its
// order; what Penny does not measure (GPU, volumes, load balancers,
// adjustments, shared and external costs) is 0 or null. Penny's own
// fields come after OpenCost's: requests, and costPer1kRequests (null
// without requests).
type allocationJSON struct {
	Name                           string      `json:"name"`
	Properties                     *Properties `json:"properties"`
	Window                         Window      `json:"window"`
	Start                          string      `json:"start"`
	End                            string      `json:"end"`
	Minutes                        *float64    `json:"minutes"`
	CPUCores                       *float64    `json:"cpuCores"`
	CPUCoreRequestAverage          *float64    `json:"cpuCoreRequestAverage"`
	CPUCoreUsageAverage            *float64    `json:"cpuCoreUsageAverage"`
	CPUCoreHours                   *float64    `json:"cpuCoreHours"`
	CPUCost                        *float64    `json:"cpuCost"`
	CPUCostAdjustment              *float64    `json:"cpuCostAdjustment"`
	CPUCostIdle                    *float64    `json:"cpuCostIdle"`
	CPUEfficiency                  *float64    `json:"cpuEfficiency"`
	GPUCount                       *float64    `json:"gpuCount"`
	GPURequestAverage              *float64    `json:"gpuRequestAverage"`
	GPUUsageAverage                *float64    `json:"gpuUsageAverage"`
	GPUHours                       *float64    `json:"gpuHours"`
	GPUCost                        *float64    `json:"gpuCost"`
	GPUCostAdjustment              *float64    `json:"gpuCostAdjustment"`
	GPUCostIdle                    *float64    `json:"gpuCostIdle"`
	GPUEfficiency                  *float64    `json:"gpuEfficiency"`
	NetworkTransferBytes           *float64    `json:"networkTransferBytes"`
	NetworkReceiveBytes            *float64    `json:"networkReceiveBytes"`
	NetworkCost                    *float64    `json:"networkCost"`
	NetworkCrossZoneCost           *float64    `json:"networkCrossZoneCost"`
	NetworkCrossRegionCost         *float64    `json:"networkCrossRegionCost"`
	NetworkInternetCost            *float64    `json:"networkInternetCost"`
	NetworkCostAdjustment          *float64    `json:"networkCostAdjustment"`
	LoadBalancerCost               *float64    `json:"loadBalancerCost"`
	LoadBalancerCostAdjustment     *float64    `json:"loadBalancerCostAdjustment"`
	PVBytes                        *float64    `json:"pvBytes"`
	PVByteHours                    *float64    `json:"pvByteHours"`
	PVCost                         *float64    `json:"pvCost"`
	PVs                            any         `json:"pvs"`
	PVCostAdjustment               *float64    `json:"pvCostAdjustment"`
	RAMBytes                       *float64    `json:"ramBytes"`
	RAMByteRequestAverage          *float64    `json:"ramByteRequestAverage"`
	RAMByteUsageAverage            *float64    `json:"ramByteUsageAverage"`
	RAMByteHours                   *float64    `json:"ramByteHours"`
	RAMCost                        *float64    `json:"ramCost"`
	RAMCostAdjustment              *float64    `json:"ramCostAdjustment"`
	RAMCostIdle                    *float64    `json:"ramCostIdle"`
	RAMEfficiency                  *float64    `json:"ramEfficiency"`
	ExternalCost                   *float64    `json:"externalCost"`
	SharedCost                     *float64    `json:"sharedCost"`
	TotalCost                      *float64    `json:"totalCost"`
	TotalEfficiency                *float64    `json:"totalEfficiency"`
	ProportionalAssetResourceCosts any         `json:"proportionalAssetResourceCosts"`
	LoadBalancers                  any         `json:"lbAllocations"`
	SharedCostBreakdown            any         `json:"sharedCostBreakdown"`
	Requests                       *float64    `json:"requests"`
	CostPer1kRequests              *float64    `json:"costPer1kRequests"`
}

// MarshalJSON writes OpenCost's shape: derived values (minutes, cores,
// efficiencies, total cost) included, every number rounded to 6 decimals.
func (a *Allocation) MarshalJSON() ([]byte, error) {
	zero := round(0)
	props := a.Properties
	j := allocationJSON{
		Name:                       a.Name,
		Properties:                 &props,
		Window:                     a.Window,
		Start:                      a.Start.UTC().Format(time.RFC3339),
		End:                        a.End.UTC().Format(time.RFC3339),
		Minutes:                    round(a.Minutes()),
		CPUCores:                   round(a.CPUCores()),
		CPUCoreRequestAverage:      round(a.CPUCoreRequestAverage),
		CPUCoreUsageAverage:        round(a.CPUCoreUsageAverage),
		CPUCoreHours:               round(a.CPUCoreHours),
		CPUCost:                    round(a.CPUCost),
		CPUCostAdjustment:          zero,
		CPUCostIdle:                round(a.CPUCostIdle),
		CPUEfficiency:              round(a.CPUEfficiency()),
		GPUCount:                   zero,
		GPURequestAverage:          zero,
		GPUUsageAverage:            zero,
		GPUHours:                   zero,
		GPUCost:                    zero,
		GPUCostAdjustment:          zero,
		GPUCostIdle:                zero,
		GPUEfficiency:              zero,
		NetworkTransferBytes:       round(a.NetworkTransferBytes),
		NetworkReceiveBytes:        zero,
		NetworkCost:                round(a.NetworkCost),
		NetworkCrossZoneCost:       zero,
		NetworkCrossRegionCost:     zero,
		NetworkInternetCost:        round(a.NetworkInternetCost),
		NetworkCostAdjustment:      zero,
		LoadBalancerCost:           zero,
		LoadBalancerCostAdjustment: zero,
		PVBytes:                    zero,
		PVByteHours:                zero,
		PVCost:                     zero,
		PVCostAdjustment:           zero,
		RAMBytes:                   round(a.RAMBytes()),
		RAMByteRequestAverage:      round(a.RAMBytesRequestAverage),
		RAMByteUsageAverage:        round(a.RAMBytesUsageAverage),
		RAMByteHours:               round(a.RAMByteHours),
		RAMCost:                    round(a.RAMCost),
		RAMCostAdjustment:          zero,
		RAMCostIdle:                round(a.RAMCostIdle),
		RAMEfficiency:              round(a.RAMEfficiency()),
		ExternalCost:               zero,
		SharedCost:                 zero,
		TotalCost:                  round(a.TotalCost()),
		TotalEfficiency:            round(a.TotalEfficiency()),
		Requests:                   round(a.Requests),
	}
	if v, ok := a.CostPer1kRequests(); ok {
		j.CostPer1kRequests = round(v)
	}
	return json.Marshal(&j)
}

// UnmarshalJSON reads what MarshalJSON (or OpenCost) wrote; derived
// fields are recomputed, not read.
func (a *Allocation) UnmarshalJSON(b []byte) error {
	var j allocationJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var start, end time.Time
	var err error
	if j.Start != "" {
		if start, err = time.Parse(time.RFC3339, j.Start); err != nil {
			return fmt.Errorf("start: %w", err)
		}
	}
	if j.End != "" {
		if end, err = time.Parse(time.RFC3339, j.End); err != nil {
			return fmt.Errorf("end: %w", err)
		}
	}
	*a = Allocation{
		Name:                   j.Name,
		Window:                 j.Window,
		Start:                  start,
		End:                    end,
		CPUCoreHours:           val(j.CPUCoreHours),
		CPUCoreRequestAverage:  val(j.CPUCoreRequestAverage),
		CPUCoreUsageAverage:    val(j.CPUCoreUsageAverage),
		CPUCost:                val(j.CPUCost),
		CPUCostIdle:            val(j.CPUCostIdle),
		RAMByteHours:           val(j.RAMByteHours),
		RAMBytesRequestAverage: val(j.RAMByteRequestAverage),
		RAMBytesUsageAverage:   val(j.RAMByteUsageAverage),
		RAMCost:                val(j.RAMCost),
		RAMCostIdle:            val(j.RAMCostIdle),
		NetworkTransferBytes:   val(j.NetworkTransferBytes),
		NetworkCost:            val(j.NetworkCost),
		NetworkInternetCost:    val(j.NetworkInternetCost),
		Requests:               val(j.Requests),
	}
	if j.Properties != nil {
		a.Properties = *j.Properties
	}
	return nil
}

// MarshalJSON writes OpenCost's window: {"start": RFC3339, "end": RFC3339}.
func (w Window) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Start string `json:"start"`
		End   string `json:"end"`
	}{w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (w *Window) UnmarshalJSON(b []byte) error {
	var j struct{ Start, End string }
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var err error
	if w.Start, err = time.Parse(time.RFC3339, j.Start); err != nil {
		return fmt.Errorf("window start: %w", err)
	}
	if w.End, err = time.Parse(time.RFC3339, j.End); err != nil {
		return fmt.Errorf("window end: %w", err)
	}
	return nil
}

// Response is OpenCost's envelope: {"code":200,"status":"success","data":
// [{"<key>": {allocation}, ...}, ...]}, one map per step (one in all with
// accumulate). Errors have a code, status "error", a message and no data.
//
// Currency, a field OpenCost does not have (its clients ignore it), names
// the currency of every cost (ISO 4217, the pricing file's).
type Response struct {
	Code     int                      `json:"code"`
	Status   string                   `json:"status"`
	Data     []map[string]*Allocation `json:"data"`
	Message  string                   `json:"message,omitempty"`
	Warning  string                   `json:"warning,omitempty"`
	Currency string                   `json:"currency,omitempty"`
}

// ErrorResponse is the envelope of an error with an HTTP status code.
func ErrorResponse(code int, err error) *Response {
	return &Response{Code: code, Status: "error", Message: err.Error()}
}
