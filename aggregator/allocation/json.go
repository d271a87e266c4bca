package allocation

import (
	"bufio"
	"encoding/json"
	"io"
	"slices"
	"strconv"

	"github.com/pennyhq/penny/aggregator/cost"
)

// writeResponse writes resp as json.Encoder writes it, byte for byte, but
// streams it and writes each allocation's JSON as it marshals itself:
// the encoder would hold the whole answer (7 MB for 5,000 pods) and scan
// every allocation's JSON again to compact it, which it already is.
func writeResponse(w io.Writer, resp *cost.Response) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var scratch []byte
	str := func(s string) {
		b, _ := json.Marshal(s) // a string always marshals
		bw.Write(b)
	}
	bw.WriteString(`{"code":`)
	bw.Write(strconv.AppendInt(scratch[:0], int64(resp.Code), 10))
	bw.WriteString(`,"status":`)
	str(resp.Status)
	bw.WriteString(`,"data":`)
	if resp.Data == nil {
		bw.WriteString("null")
	} else {
		bw.WriteByte('[')
		keys := []string{}
		for i, set := range resp.Data {
			if i > 0 {
				bw.WriteByte(',')
			}
			if set == nil {
				bw.WriteString("null")
				continue
			}
			keys = keys[:0]
			for k := range set {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			bw.WriteByte('{')
			for j, k := range keys {
				if j > 0 {
					bw.WriteByte(',')
				}
				str(k)
				bw.WriteByte(':')
				a := set[k]
				if a == nil {
					bw.WriteString("null")
					continue
				}
				b, err := a.MarshalJSON()
				if err != nil {
					return err
				}
				bw.Write(b)
			}
			bw.WriteByte('}')
		}
		bw.WriteByte(']')
	}
	for _, f := range []struct{ name, v string }{{"message", resp.Message}, {"warning", resp.Warning}, {"currency", resp.Currency}} {
		if f.v != "" {
			bw.WriteString(`,"` + f.name + `":`)
			str(f.v)
		}
	}
	bw.WriteString("}\n")
	return bw.Flush()
}
