package query

import (
	"encoding/json"
	"strconv"

	"github.com/pennyhq/penny/aggregator/pods"
)

// AppendJSON appends p and a newline as a json.Encoder writes them, byte
// for byte, its pods through pods.AppendJSON: the gateway's answer to a
// namespace's pods, thousands of them, without encoding/json's reflection.
func (p *Pods) AppendJSON(b []byte) ([]byte, error) {
	b = strconv.AppendUint(append(b, `{"index":`...), p.Index, 10)
	c, err := json.Marshal(p.Currency)
	if err != nil {
		return b, err
	}
	b = append(append(append(b, `,"currency":`...), c...), `,"pods":`...)
	if b, err = pods.AppendJSON(b, p.Pods); err != nil {
		return b, err
	}
	if len(p.Warnings) > 0 {
		w, err := json.Marshal(p.Warnings)
		if err != nil {
			return b, err
		}
		b = append(append(b, `,"warnings":`...), w...)
	}
	return append(b, "}\n"...), nil
}
