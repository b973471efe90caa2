package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
)

// InvoiceType is the job type this worker adds.
const InvoiceType = "invoice.total"

// Invoice is the payload of an invoice.total job:
//
//	{"invoice_id": "INV-1001", "customer": "acme", "currency": "EUR",
//	 "lines": [{"sku": "PAPER-A4", "quantity": 3, "unit_cents": 1250}]}
type Invoice struct {
	InvoiceID string `json:"invoice_id"`
	Customer  string `json:"customer"`
	Currency  string `json:"currency"`
	Lines     []Line `json:"lines"`
}

// Line is one line of an Invoice.
type Line struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitCents int64  `json:"unit_cents"`
}

// Total is the result of an invoice.total job.
type Total struct {
	InvoiceID  string `json:"invoice_id"`
	Currency   string `json:"currency"`
	Lines      int    `json:"lines"`
	TotalCents int64  `json:"total_cents"`
}

// The payload's limits.
const (
	maxLines    = 1000
	maxQuantity = 1_000_000
	maxCents    = 100_000_000 // a million in the currency's unit, per unit
)

var (
	invoiceIDPattern = regexp.MustCompile(`^[A-Z]{2,5}-[0-9]{1,12}$`)
	currencyPattern  = regexp.MustCompile(`^[A-Z]{3}$`)
)

// InvoiceHandler runs invoice.total jobs. Its Validate method is the
// type's validator, run by the bot before it accepts a job and by the
// worker before the job runs.
type InvoiceHandler struct{ Logger *slog.Logger }

// Validate checks an invoice.total payload, naming the field at fault.
func (InvoiceHandler) Validate(payload json.RawMessage) error {
	_, err := decodeInvoice(payload)
	return err
}

// Handle adds up the invoice. Its log lines carry the job's job_id (the
// worker binds it to ctx) and the invoice's own fields.
func (h InvoiceHandler) Handle(ctx context.Context, job *jobs.Job) (any, error) {
	inv, err := decodeInvoice(job.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", jobs.ErrSkipRetry, err) // a bad payload will not get better
	}
	ctx = logging.With(ctx, "invoice_id", inv.InvoiceID, "customer", inv.Customer)
	var total int64
	for _, l := range inv.Lines {
		total += l.Quantity * l.UnitCents // bounded by the limits: no overflow
	}
	h.Logger.InfoContext(ctx, "invoice totalled", "lines", len(inv.Lines), "total_cents", total, "currency", inv.Currency)
	return Total{InvoiceID: inv.InvoiceID, Currency: inv.Currency, Lines: len(inv.Lines), TotalCents: total}, nil
}

func decodeInvoice(payload json.RawMessage) (Invoice, error) {
	var inv Invoice
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil {
		return inv, &jobs.PayloadError{Reason: "want an invoice {invoice_id, customer, currency, lines: [{sku, quantity, unit_cents}]}: " + err.Error()}
	}
	switch {
	case !invoiceIDPattern.MatchString(inv.InvoiceID):
		return inv, &jobs.PayloadError{Field: "invoice_id", Reason: fmt.Sprintf("%q: want letters, a dash and digits, such as INV-1001", inv.InvoiceID)}
	case inv.Customer == "" || len(inv.Customer) > 100:
		return inv, &jobs.PayloadError{Field: "customer", Reason: "want 1 to 100 characters"}
	case !currencyPattern.MatchString(inv.Currency):
		return inv, &jobs.PayloadError{Field: "currency", Reason: fmt.Sprintf("%q: want an ISO 4217 code such as EUR", inv.Currency)}
	case len(inv.Lines) == 0 || len(inv.Lines) > maxLines:
		return inv, &jobs.PayloadError{Field: "lines", Reason: fmt.Sprintf("%d lines: want 1 to %d", len(inv.Lines), maxLines)}
	}
	for i, l := range inv.Lines {
		field := func(name string) string { return fmt.Sprintf("lines[%d].%s", i, name) }
		switch {
		case l.SKU == "":
			return inv, &jobs.PayloadError{Field: field("sku"), Reason: "missing"}
		case l.Quantity < 1 || l.Quantity > maxQuantity:
			return inv, &jobs.PayloadError{Field: field("quantity"), Reason: fmt.Sprintf("%d: want 1 to %d", l.Quantity, maxQuantity)}
		case l.UnitCents < 0 || l.UnitCents > maxCents:
			return inv, &jobs.PayloadError{Field: field("unit_cents"), Reason: fmt.Sprintf("%d: want 0 to %d", l.UnitCents, maxCents)}
		}
	}
	return inv, nil
}
