package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/api/password"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// Engine is what the /v1 endpoints need besides the server: the event log,
// the read models, the catalog and the payment gateway.
type Engine struct {
	// Store is the event log; its database holds the read models. Required.
	Store *eventstore.Store
	// Types decodes and encodes the events. Required.
	Types *eventstore.EventTypes
	// Projections, when set, are waited for after each command, so the next
	// read shows its effect (read-your-writes). Nil: no wait.
	Projections *projections.Runner
	// Gateway tokenizes cards and bank accounts (ACC-8) and charges orders.
	// Required.
	Gateway payment.Gateway
	// Catalog prices orders and describes products. Required.
	Catalog *catalog.Catalog
	// Renewals makes a subscription's pending refund or charge with the
	// gateway at once, after a refund, a cancellation or an add-on change
	// (ARS-7, MON-2, MON-3): *renewal.Worker. Required.
	Renewals Renewals
	// Random draws product keys, serial and order numbers. Default
	// crypto/rand.Reader.
	Random io.Reader
	// SecretKey derives password-reset tokens (account.ResetToken); the
	// e-mail outbox must use the same key. At least 32 bytes. Required.
	SecretKey []byte
	// SettleTimeout bounds the read-your-writes wait. Default 3s.
	SettleTimeout time.Duration
	// Logger receives what the customer is not told. Default: the server's.
	Logger *slog.Logger
}

// RegisterEngine adds the /v1 endpoints of DESIGN §9 to s.
func RegisterEngine(s *Server, deps Engine) error {
	switch {
	case deps.Store == nil || deps.Types == nil || deps.Gateway == nil || deps.Catalog == nil || deps.Renewals == nil:
		return errors.New("api: engine: Store, Types, Gateway, Catalog and Renewals are required")
	case len(deps.SecretKey) < 32:
		return errors.New("api: engine: SecretKey must have at least 32 bytes")
	}
	if deps.SettleTimeout == 0 {
		deps.SettleTimeout = 3 * time.Second
	}
	if deps.Logger == nil {
		deps.Logger = s.cfg.Logger
	}
	if deps.Random == nil {
		deps.Random = rand.Reader
	}
	for _, register := range []func(*Server, Engine) error{registerAccounts, registerSubscriptions, registerOrders, registerAudit, registerAgent} {
		if err := register(s, deps); err != nil {
			return err
		}
	}
	return nil
}

// commandHandler returns a handler of d's commands on the engine's log.
func commandHandler[S, C any](s *Server, deps Engine, d domain.Decider[S, C]) (*eventstore.CommandHandler[S, C], error) {
	return eventstore.NewCommandHandler(d, eventstore.HandlerConfig{
		Store: deps.Store, Types: deps.Types, Clock: s.Clock(), Policy: s.Policy(),
	})
}

// accountsAPI serves the account endpoints (DOMAIN §2).
type accountsAPI struct {
	Engine
	s       *Server
	handler *eventstore.CommandHandler[account.Account, account.Command]
}

// registerAccounts adds the account, session, password, profile and
// billing endpoints.
func registerAccounts(s *Server, deps Engine) error {
	h, err := commandHandler(s, deps, account.Decider)
	if err != nil {
		return err
	}
	a := &accountsAPI{Engine: deps, s: s, handler: h}
	a.routes()
	return nil
}

func (a *accountsAPI) routes() {
	tags := []string{"accounts"}
	a.s.Route(Route{Method: "POST", Pattern: "/v1/accounts", Tags: tags, Auth: AuthNone,
		Summary:     "Sign up",
		Description: "Opens an account: e-mail (the user name, unique whatever its case and spacing: ACC-1), password (6 to 128 characters: ACC-3), name and country (ACC-2).",
		Request:     signUpRequest{}, Responses: map[int]any{http.StatusCreated: accountView{}, http.StatusConflict: nil},
		Handler: HandlerFunc(a.signUp)})
	a.s.Route(Route{Method: "GET", Pattern: "/v1/accounts/{id}", Tags: tags, Auth: AuthCustomer,
		Summary:     "Read an account",
		Description: "The signed-in customer's own account; any other id answers 404 (SEC-1).",
		Responses:   map[int]any{http.StatusOK: accountView{}, http.StatusNotFound: nil},
		Handler:     HandlerFunc(a.getAccount)})
	a.s.Route(Route{Method: "POST", Pattern: "/v1/sessions", Tags: []string{"sessions"}, Auth: AuthNone,
		Summary: "Sign in",
		Description: "Returns a bearer token. A wrong password and an unknown e-mail get the same answer; five failures within 15 minutes " +
			"lock sign-in for the account for 15 minutes (ACC-4, policy).",
		Request: signInRequest{}, Responses: map[int]any{http.StatusCreated: sessionView{}, http.StatusTooManyRequests: nil},
		Handler: HandlerFunc(a.signIn)})
	a.s.Route(Route{Method: "DELETE", Pattern: "/v1/sessions/current", Tags: []string{"sessions"}, Auth: AuthCustomer,
		Summary: "Sign out", Description: "Revokes the session whose token authenticates the request.",
		Responses: map[int]any{http.StatusNoContent: nil}, Handler: HandlerFunc(a.signOut)})
	a.s.Route(Route{Method: "POST", Pattern: "/v1/password/change", Tags: []string{"passwords"}, Auth: AuthCustomer,
		Summary:     "Change password",
		Description: "Needs the current password and the new one typed twice (ACC-5). Other sessions are signed out.",
		Request:     changePasswordRequest{}, Responses: map[int]any{http.StatusNoContent: nil},
		Handler: HandlerFunc(a.changePassword)})
	a.s.Route(Route{Method: "POST", Pattern: "/v1/password/forgot", Tags: []string{"passwords"}, Auth: AuthNone,
		Summary: "Ask for password reset instructions",
		Description: "E-mails a reset link valid for one hour, once (ACC-6); a newer request voids older links. The answer is the same " +
			"whether or not the address has an account.",
		Request: forgotPasswordRequest{}, Responses: map[int]any{http.StatusAccepted: messageView{}},
		Handler: HandlerFunc(a.forgotPassword)})
	a.s.Route(Route{Method: "POST", Pattern: "/v1/password/reset", Tags: []string{"passwords"}, Auth: AuthNone,
		Summary:     "Reset the password with the e-mailed token",
		Description: "Takes the token from the reset link and the new password twice (ACC-6). Every session is signed out.",
		Request:     resetPasswordRequest{}, Responses: map[int]any{http.StatusNoContent: nil},
		Handler: HandlerFunc(a.resetPassword)})
	a.s.Route(Route{Method: "GET", Pattern: "/v1/account/profile", Tags: tags, Auth: AuthCustomer,
		Summary: "Read account information", Responses: map[int]any{http.StatusOK: profileView{}},
		Handler: HandlerFunc(a.getProfile)})
	a.s.Route(Route{Method: "PUT", Pattern: "/v1/account/profile", Tags: tags, Auth: AuthCustomer,
		Summary:     "Replace account information",
		Description: "Name, address, country and language replace the previous values as a whole (ACC-7).",
		Request:     profileRequest{}, Responses: map[int]any{http.StatusOK: profileView{}},
		Handler: HandlerFunc(a.putProfile)})
	a.s.Route(Route{Method: "GET", Pattern: "/v1/account/billing", Tags: tags, Auth: AuthCustomer,
		Summary: "Read billing information", Responses: map[int]any{http.StatusOK: billingView{}},
		Handler: HandlerFunc(a.getBilling)})
	a.s.Route(Route{Method: "PUT", Pattern: "/v1/account/billing", Tags: tags, Auth: AuthCustomer,
		Summary: "Replace billing information",
		Description: "Country, then a card (everywhere) or a direct debit (DE, AT, NL: policy), every field required (ACC-8). The card " +
			"number goes to the payment gateway and is replaced by its token; only brand, last four, expiry and holder are kept.",
		Request: billingRequest{}, Responses: map[int]any{http.StatusOK: billingView{}, http.StatusServiceUnavailable: nil},
		Handler: HandlerFunc(a.putBilling)})
}

// Requests and answers.
type (
	signUpRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Name     string `json:"name"`
		Country  string `json:"country"`
	}
	accountView struct {
		AccountID uuid.UUID `json:"account_id"`
		Email     string    `json:"email"`
		Name      string    `json:"name"`
		Country   string    `json:"country"`
		Language  string    `json:"language"`
	}
	signInRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	sessionView struct {
		Token     string    `json:"token"`
		TokenType string    `json:"token_type"`
		ExpiresAt time.Time `json:"expires_at"`
		AccountID uuid.UUID `json:"account_id"`
	}
	changePasswordRequest struct {
		CurrentPassword  string `json:"current_password"`
		NewPassword      string `json:"new_password"`
		NewPasswordAgain string `json:"new_password_again"`
	}
	forgotPasswordRequest struct {
		Email string `json:"email"`
	}
	resetPasswordRequest struct {
		Token            string `json:"token"`
		NewPassword      string `json:"new_password"`
		NewPasswordAgain string `json:"new_password_again"`
	}
	messageView struct {
		Detail string `json:"detail"`
	}
	profileRequest struct {
		Name     string          `json:"name"`
		Address  account.Address `json:"address,omitempty"`
		Country  string          `json:"country"`
		Language string          `json:"language"`
	}
	profileView struct {
		Email    string          `json:"email"`
		Name     string          `json:"name"`
		Address  account.Address `json:"address"`
		Country  string          `json:"country"`
		Language string          `json:"language"`
	}
	billingRequest struct {
		Country       string               `json:"country"`
		PaymentMethod paymentMethodRequest `json:"payment_method"`
	}
	paymentMethodRequest struct {
		Type        string              `json:"type"`
		Card        *cardRequest        `json:"card,omitempty"`
		BankAccount *bankAccountRequest `json:"bank_account,omitempty"`
	}
	cardRequest struct {
		Number     string `json:"number"`
		CVV        string `json:"cvv"`
		ExpMonth   int    `json:"exp_month"`
		ExpYear    int    `json:"exp_year"`
		HolderName string `json:"holder_name"`
	}
	bankAccountRequest struct {
		IBAN       string `json:"iban"`
		HolderName string `json:"holder_name"`
	}
	billingView struct {
		Country       *string            `json:"country"`
		PaymentMethod *paymentMethodView `json:"payment_method"`
	}
	paymentMethodView struct {
		Type       string `json:"type"`
		Brand      string `json:"brand,omitempty"`
		Last4      string `json:"last4"`
		ExpMonth   int    `json:"exp_month,omitempty"`
		ExpYear    int    `json:"exp_year,omitempty"`
		Country    string `json:"country,omitempty"`
		HolderName string `json:"holder_name"`
	}
)

// wrongCredentials is the one answer to a wrong password and an unknown
// e-mail (ACC-4).
type wrongCredentials struct{}

func (wrongCredentials) Error() string      { return "the e-mail address or the password is wrong" }
func (wrongCredentials) Unauthorized() bool { return true }

func streamOf(id uuid.UUID) eventstore.StreamID { return eventstore.StreamID("account-" + id.String()) }

func customer(id uuid.UUID) eventstore.CommandMeta {
	return eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: id.String()}}
}

// handle runs a command on the account and waits until the read models show
// it.
func (a *accountsAPI) handle(ctx context.Context, id uuid.UUID, cmd account.Command) (eventstore.Outcome[account.Account], error) {
	out, err := a.handler.Handle(ctx, streamOf(id), cmd, customer(id))
	if err != nil {
		return out, err
	}
	a.settle(ctx, out.Append)
	return out, nil
}

// settle waits, bounded, for the projections to apply an append, so the
// next read shows it (read-your-writes): past the bound the answer goes out
// anyway, and the read may lag.
func (deps Engine) settle(ctx context.Context, r eventstore.AppendResult) {
	deps.settleAt(ctx, r.Checkpoint())
}

// settleAt is settle for the append that ended at checkpoint cp; a zero cp
// (nothing appended) waits for nothing.
func (deps Engine) settleAt(ctx context.Context, cp eventstore.Checkpoint) {
	if deps.Projections == nil || cp.Position == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, deps.SettleTimeout)
	defer cancel()
	if err := deps.Projections.WaitFor(ctx, cp); err != nil {
		deps.Logger.Warn("read models lag behind a command", "err", err)
	}
}

func (a *accountsAPI) hash(pw account.Password) (string, error) {
	return password.Hash(pw.Plain(), a.s.Policy().Argon2id)
}

// verifier checks a typed password against a stored hash; a hash that does
// not parse never matches.
func verifier(typed string) func(string) bool {
	return func(hash string) bool {
		ok, err := password.Verify(typed, hash)
		return err == nil && ok
	}
}

func (a *accountsAPI) signUp(w http.ResponseWriter, r *http.Request) error {
	var in signUpRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	email, err := account.ParseEmail(in.Email)
	v.Check("email", err)
	pw, err := account.NewPassword(in.Password, a.s.Policy())
	v.Check("password", err)
	name, err := account.ParseName(in.Name)
	v.Check("name", err)
	country, err := account.ParseCountry(in.Country)
	v.Check("country", err)
	if err := v.Err(); err != nil {
		return err
	}
	hash, err := a.hash(pw)
	if err != nil {
		return err
	}
	id := uuid.New()
	out, err := a.handle(r.Context(), id, account.Register{AccountID: id, Email: email, Name: name, Country: country, PasswordHash: hash})
	var taken *eventstore.ReservationConflictError
	if errors.As(err, &taken) && taken.Scope == account.EmailScope {
		return &Problem{Type: ProblemTypeConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: "an account with this e-mail address already exists; sign in, or reset its password",
			Errors: []FieldError{{Field: "email", Message: "is already the user name of an account"}}}
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/accounts/"+id.String())
	return WriteJSON(w, http.StatusCreated, viewAccount(out.State))
}

func viewAccount(st account.Account) accountView {
	return accountView{AccountID: st.ID(), Email: st.Email().String(), Name: st.Name().String(),
		Country: st.Country().String(), Language: st.Language().String()}
}

func (a *accountsAPI) getAccount(w http.ResponseWriter, r *http.Request) error {
	sess, _ := SessionFrom(r.Context())
	if r.PathValue("id") != sess.AccountID.String() {
		return account.ErrNotFound // SEC-1: another account's id looks like none
	}
	p, err := a.readProfile(r.Context(), sess.AccountID)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, accountView{AccountID: sess.AccountID, Email: p.Email, Name: p.Name, Country: p.Country, Language: p.Language})
}

func (a *accountsAPI) signIn(w http.ResponseWriter, r *http.Request) error {
	var in signInRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	if in.Email == "" {
		v.Check("email", errors.New("is required"))
	}
	if in.Password == "" {
		v.Check("password", errors.New("is required"))
	}
	if err := v.Err(); err != nil {
		return err
	}
	id, found, err := a.ownerOf(r.Context(), account.EmailScope, in.Email)
	if err != nil {
		return err
	}
	if !found {
		// Cost what a real check costs, so timing tells nothing (ACC-4).
		if err := password.VerifyDummy(in.Password, a.s.Policy().Argon2id); err != nil {
			return err
		}
		return wrongCredentials{}
	}
	out, err := a.handle(r.Context(), id, account.SignIn{PasswordMatches: verifier(in.Password)})
	if err != nil {
		return err
	}
	for _, e := range out.Events {
		if _, failed := e.(account.SignInFailed); failed {
			return wrongCredentials{}
		}
	}
	token, sess, err := a.s.Sessions().Create(r.Context(), id, a.s.Clock().Now(), a.s.Policy().SessionTokenValidity)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, sessionView{Token: token, TokenType: "Bearer", ExpiresAt: sess.ExpiresAt, AccountID: id})
}

// ownerOf finds the account holding a reservation: an e-mail address (any
// case and spacing) or a reset token's hash.
func (a *accountsAPI) ownerOf(ctx context.Context, scope, key string) (uuid.UUID, bool, error) {
	if scope == account.EmailScope {
		email, err := account.ParseEmail(key)
		if err != nil {
			return uuid.Nil, false, nil // no account has a malformed address
		}
		key = email.String()
	}
	stream, found, err := a.Store.ReservationOwner(ctx, eventstore.Reservation{Scope: scope, Key: key, Personal: scope == account.EmailScope})
	if err != nil || !found {
		return uuid.Nil, false, err
	}
	id, err := uuid.Parse(string(stream)[len("account-"):])
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("api: reservation %s held by %s, not an account", scope, stream)
	}
	return id, true, nil
}

func (a *accountsAPI) signOut(w http.ResponseWriter, r *http.Request) error {
	sess, _ := SessionFrom(r.Context())
	if err := a.s.Sessions().Revoke(r.Context(), sess.ID, a.s.Clock().Now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *accountsAPI) changePassword(w http.ResponseWriter, r *http.Request) error {
	var in changePasswordRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	if in.CurrentPassword == "" {
		v.Check("current_password", errors.New("is required"))
	}
	pw, err := account.NewPasswordTwice(in.NewPassword, in.NewPasswordAgain, a.s.Policy(), "new_password", "new_password_again")
	v.Check("", err)
	if err := v.Err(); err != nil {
		return err
	}
	hash, err := a.hash(pw)
	if err != nil {
		return err
	}
	sess, _ := SessionFrom(r.Context())
	if _, err := a.handle(r.Context(), sess.AccountID, account.ChangePassword{CurrentMatches: verifier(in.CurrentPassword), NewPasswordHash: hash}); err != nil {
		return err
	}
	if _, err := a.s.Sessions().RevokeAllFor(r.Context(), sess.AccountID, sess.ID, a.s.Clock().Now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *accountsAPI) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	var in forgotPasswordRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Email == "" {
		return domain.Invalid("email", "is required")
	}
	id, found, err := a.ownerOf(r.Context(), account.EmailScope, in.Email)
	if err != nil {
		return err
	}
	if found {
		resetID := uuid.New()
		token := account.ResetToken(a.SecretKey, resetID)
		if _, err := a.handle(r.Context(), id, account.RequestPasswordReset{ResetID: resetID, TokenHash: account.HashResetToken(token)}); err != nil {
			return err
		}
	}
	return WriteJSON(w, http.StatusAccepted, messageView{
		Detail: "If an account uses this e-mail address, we sent it instructions to reset the password."})
}

func (a *accountsAPI) resetPassword(w http.ResponseWriter, r *http.Request) error {
	var in resetPasswordRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	if in.Token == "" {
		v.Check("token", errors.New("is required"))
	}
	pw, err := account.NewPasswordTwice(in.NewPassword, in.NewPasswordAgain, a.s.Policy(), "new_password", "new_password_again")
	v.Check("", err)
	if err := v.Err(); err != nil {
		return err
	}
	tokenHash := account.HashResetToken(in.Token)
	id, found, err := a.ownerOf(r.Context(), account.ResetTokenScope, tokenHash)
	if err != nil {
		return err
	}
	if !found {
		return account.ErrResetTokenInvalid
	}
	hash, err := a.hash(pw)
	if err != nil {
		return err
	}
	if _, err := a.handle(r.Context(), id, account.ResetPassword{TokenHash: tokenHash, NewPasswordHash: hash}); err != nil {
		return err
	}
	if _, err := a.s.Sessions().RevokeAllFor(r.Context(), id, uuid.Nil, a.s.Clock().Now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *accountsAPI) readProfile(ctx context.Context, id uuid.UUID) (profileView, error) {
	var p profileView
	var addr []byte
	err := a.Store.Pool().QueryRow(ctx, `SELECT email, name, address, country, language FROM accounts WHERE account_id = $1`, id).
		Scan(&p.Email, &p.Name, &addr, &p.Country, &p.Language)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, account.ErrNotFound
	}
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(addr, &p.Address)
}

func (a *accountsAPI) getProfile(w http.ResponseWriter, r *http.Request) error {
	sess, _ := SessionFrom(r.Context())
	p, err := a.readProfile(r.Context(), sess.AccountID)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, p)
}

func (a *accountsAPI) putProfile(w http.ResponseWriter, r *http.Request) error {
	var in profileRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	name, err := account.ParseName(in.Name)
	v.Check("name", err)
	addr, err := account.ParseAddress(in.Address)
	v.Check("address", err)
	country, err := account.ParseCountry(in.Country)
	v.Check("country", err)
	lang, err := account.ParseLanguage(in.Language)
	v.Check("language", err)
	if err := v.Err(); err != nil {
		return err
	}
	sess, _ := SessionFrom(r.Context())
	if _, err := a.handle(r.Context(), sess.AccountID, account.UpdateProfile{Name: name, Address: addr, Country: country, Language: lang}); err != nil {
		return err
	}
	return a.getProfile(w, r)
}

func (a *accountsAPI) getBilling(w http.ResponseWriter, r *http.Request) error {
	sess, _ := SessionFrom(r.Context())
	var view billingView
	var method []byte
	err := a.Store.Pool().QueryRow(r.Context(), `SELECT billing_country, billing_method FROM accounts WHERE account_id = $1`, sess.AccountID).
		Scan(&view.Country, &method)
	if errors.Is(err, pgx.ErrNoRows) {
		return account.ErrNotFound
	}
	if err != nil {
		return err
	}
	if method != nil {
		var m payment.PaymentMethod
		if err := json.Unmarshal(method, &m); err != nil {
			return err
		}
		view.PaymentMethod = viewPaymentMethod(m)
	}
	return WriteJSON(w, http.StatusOK, view)
}

func viewPaymentMethod(m payment.PaymentMethod) *paymentMethodView {
	v := &paymentMethodView{Type: m.Kind().String(), Last4: m.LastFour(), HolderName: m.HolderName()}
	if m.Kind() == payment.KindCard {
		v.Brand, v.ExpMonth, v.ExpYear = m.Brand().String(), m.ExpMonth(), m.ExpYear()
	} else {
		v.Country = m.Country()
	}
	return v
}

func (a *accountsAPI) putBilling(w http.ResponseWriter, r *http.Request) error {
	var in billingRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	country, method, err := a.tokenize(r.Context(), in)
	if err != nil {
		return err
	}
	sess, _ := SessionFrom(r.Context())
	if _, err := a.handle(r.Context(), sess.AccountID, account.UpdateBilling{Country: country, Method: method}); err != nil {
		return err
	}
	return a.getBilling(w, r)
}

// tokenize checks the billing input (ACC-8) and hands the card or bank
// account to the gateway, which returns the method to keep. Field errors
// name the input ("payment_method.card.number").
func (a *accountsAPI) tokenize(ctx context.Context, in billingRequest) (account.Country, payment.PaymentMethod, error) {
	var v domain.Validation
	country, err := account.ParseCountry(in.Country)
	v.Check("country", err)
	kind, err := payment.ParseMethodKind(in.PaymentMethod.Type)
	if err != nil {
		v.Check("payment_method.type", errors.New(`must be "card" or "direct_debit"`))
	}
	if err := v.Err(); err != nil {
		return country, payment.PaymentMethod{}, err
	}
	if err := account.CheckPaymentKind(country, kind, a.s.Policy()); err != nil {
		return country, payment.PaymentMethod{}, err
	}
	var method payment.PaymentMethod
	if kind == payment.KindCard {
		c := in.PaymentMethod.Card
		if c == nil {
			return country, method, domain.Invalid("payment_method.card", "is required for a card")
		}
		card, err := payment.NewCard(c.Number, c.CVV, c.HolderName, c.ExpMonth, c.ExpYear, a.s.Clock().Now())
		if err != nil {
			return country, method, paymentFieldError(err)
		}
		method, err = a.Gateway.TokenizeCard(ctx, card)
		if err != nil {
			return country, method, paymentFieldError(err)
		}
	} else {
		b := in.PaymentMethod.BankAccount
		if b == nil {
			return country, method, domain.Invalid("payment_method.bank_account", "is required for a direct debit")
		}
		acct, err := payment.NewBankAccount(b.IBAN, b.HolderName)
		if err != nil {
			return country, method, paymentFieldError(err)
		}
		method, err = a.Gateway.TokenizeDirectDebit(ctx, acct)
		if err != nil {
			return country, method, paymentFieldError(err)
		}
	}
	return country, method, nil
}

// paymentFieldError puts the payment package's refusals under
// payment_method in the request, and says what a gateway refusal means.
func paymentFieldError(err error) error {
	var fe *payment.FieldError
	if errors.As(err, &fe) {
		return domain.Invalid("payment_method."+fe.Field, fe.Problem)
	}
	var ce *payment.CardError
	if errors.As(err, &ce) {
		msg := "was declined by the bank; use another card or account"
		switch ce.Code {
		case payment.CodeExpiredCard:
			msg = "has expired; use another card"
		case payment.CodeIncorrectNumber:
			msg = "is not a number the bank accepts"
		}
		return domain.Invalid("payment_method."+ce.Field, msg)
	}
	if errors.Is(err, payment.ErrUnavailable) {
		return &Problem{Type: ProblemTypeUnavailable, Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the payment service does not answer; nothing was changed, try again in a moment"}
	}
	return err
}
