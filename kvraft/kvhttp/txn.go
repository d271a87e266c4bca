package kvhttp

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
)

// MaxTxnBody is the default bound of a txn request body, as of any other
// (Config.MaxRequestBytes).
const MaxTxnBody = MaxBatchBody

// TxnCompare is one condition of a txn request.
//
// Target "exists" takes op "=" (the key is present) or "!=" (it is absent)
// and no operand. Target "value" takes any op and a base64 "value", which
// is compared bytewise with the key's value; it is false for an absent key.
// Target "mod_index" takes any op and "mod_index", compared with the index
// of the entry that last wrote the key (0 if it is absent).
//
// Key and KeyB64 name the key as in BatchOp.
type TxnCompare struct {
	Key      string  `json:"key,omitempty"`
	KeyB64   []byte  `json:"key_b64,omitempty"` // base64 in JSON
	Target   string  `json:"target"`
	Op       string  `json:"op"`
	Value    *[]byte `json:"value,omitempty"` // base64 in JSON
	ModIndex *uint64 `json:"mod_index,omitempty"`
}

// TxnRequest is the body of POST /v1/kv/txn.
type TxnRequest struct {
	If   []TxnCompare `json:"if,omitempty"`
	Then []BatchOp    `json:"then,omitempty"`
	Else []BatchOp    `json:"else,omitempty"`
}

// TxnResponse is the answer to POST /v1/kv/txn.
type TxnResponse struct {
	Index     uint64 `json:"index"`
	Succeeded bool   `json:"succeeded"`
}

var (
	compareTargets = map[string]kvraft.CompareTarget{
		"exists": kvraft.TargetExists, "value": kvraft.TargetValue, "mod_index": kvraft.TargetModIndex,
	}
	compareOps = map[string]kvraft.CompareOp{
		"=": kvraft.CmpEqual, "!=": kvraft.CmpNotEqual, "<": kvraft.CmpLess, ">": kvraft.CmpGreater,
	}
)

// DecodeTxn parses and validates a txn request body.
func DecodeTxn(r io.Reader) (kvraft.Txn, error) {
	var req TxnRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return kvraft.Txn{}, fmt.Errorf("%w: txn body: %w", kvraft.ErrInvalid, err)
	}
	if dec.More() {
		return kvraft.Txn{}, fmt.Errorf("%w: txn body: trailing data", kvraft.ErrInvalid)
	}
	if n := len(req.If) + len(req.Then) + len(req.Else); n > command.MaxTxnOps {
		return kvraft.Txn{}, fmt.Errorf("%w: txn of %d compares and ops, limit %d", kvraft.ErrTooLarge, n, command.MaxTxnOps)
	}
	var txn kvraft.Txn
	if len(req.If) > 0 {
		txn.If = make([]kvraft.Compare, len(req.If))
	}
	for i, c := range req.If {
		var err error
		if txn.If[i], err = decodeCompare(c); err != nil {
			return kvraft.Txn{}, fmt.Errorf("compare %d: %w", i, err)
		}
	}
	var err error
	if txn.Then, err = decodeOps(req.Then, "then op"); err != nil {
		return kvraft.Txn{}, err
	}
	if txn.Else, err = decodeOps(req.Else, "else op"); err != nil {
		return kvraft.Txn{}, err
	}
	if err := command.ValidateTxns([]kvraft.Txn{txn}); err != nil {
		return kvraft.Txn{}, commandErr(err)
	}
	return txn, nil
}

func decodeCompare(c TxnCompare) (kvraft.Compare, error) {
	target, ok := compareTargets[c.Target]
	if !ok {
		return kvraft.Compare{}, fmt.Errorf("%w: unknown target %q (want value, exists or mod_index)", kvraft.ErrInvalid, c.Target)
	}
	op, ok := compareOps[c.Op]
	if !ok {
		return kvraft.Compare{}, fmt.Errorf("%w: unknown op %q (want =, !=, < or >)", kvraft.ErrInvalid, c.Op)
	}
	key, err := decodeKey(c.Key, c.KeyB64, "compare")
	if err != nil {
		return kvraft.Compare{}, err
	}
	out := kvraft.Compare{Key: key, Target: target, Op: op}
	switch target {
	case kvraft.TargetValue:
		if c.Value == nil {
			return kvraft.Compare{}, fmt.Errorf("%w: target value needs a value", kvraft.ErrInvalid)
		}
		out.Value = *c.Value
	case kvraft.TargetModIndex:
		if c.ModIndex == nil {
			return kvraft.Compare{}, fmt.Errorf("%w: target mod_index needs a mod_index", kvraft.ErrInvalid)
		}
		out.ModIndex = *c.ModIndex
	}
	if target != kvraft.TargetValue && c.Value != nil {
		return kvraft.Compare{}, fmt.Errorf("%w: target %s takes no value", kvraft.ErrInvalid, c.Target)
	}
	if target != kvraft.TargetModIndex && c.ModIndex != nil {
		return kvraft.Compare{}, fmt.Errorf("%w: target %s takes no mod_index", kvraft.ErrInvalid, c.Target)
	}
	if err := command.ValidateCompare(out); err != nil {
		return kvraft.Compare{}, commandErr(err)
	}
	return out, nil
}

// EncodeTxn returns the request body of txn.
func EncodeTxn(txn kvraft.Txn) ([]byte, error) {
	if err := command.ValidateTxns([]kvraft.Txn{txn}); err != nil {
		return nil, commandErr(err)
	}
	var req TxnRequest
	for _, c := range txn.If {
		tc := TxnCompare{Target: c.Target.String(), Op: c.Op.String()}
		tc.Key, tc.KeyB64 = encodeKey(c.Key)
		switch c.Target {
		case kvraft.TargetValue:
			v := c.Value
			if v == nil {
				v = []byte{}
			}
			tc.Value = &v
		case kvraft.TargetModIndex:
			tc.ModIndex = &c.ModIndex
		}
		req.If = append(req.If, tc)
	}
	req.Then = encodeOps(txn.Then)
	req.Else = encodeOps(txn.Else)
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("kvhttp: encode txn: %w", err)
	}
	return b, nil
}

// encodeOps converts valid ops to their request form.
func encodeOps(ops []kvraft.Op) []BatchOp {
	if len(ops) == 0 {
		return nil
	}
	out := make([]BatchOp, len(ops))
	for i, op := range ops {
		k, k64 := encodeKey(op.Key)
		if op.Type == kvraft.OpDelete {
			out[i] = BatchOp{Op: "delete", Key: k, KeyB64: k64}
			continue
		}
		v := op.Value
		if v == nil {
			v = []byte{}
		}
		out[i] = BatchOp{Op: "put", Key: k, KeyB64: k64, Value: v}
	}
	return out
}

func (h *handler) txn(w http.ResponseWriter, r *http.Request) {
	body, err := h.readJSON(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	txn, err := DecodeTxn(bytesReader(body))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.s.Txn(ctx, txn)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, TxnResponse{Index: res.Index, Succeeded: res.Succeeded})
}
