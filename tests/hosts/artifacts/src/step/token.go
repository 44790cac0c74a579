package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/pkg/errors"
	"github.com/urfave/cli"

	"github.com/smallstep/certificates/authority/provisioner"
	"github.com/smallstep/certificates/pki"
	"github.com/smallstep/cli-utils/errs"
	"github.com/smallstep/cli-utils/token"
	"github.com/smallstep/cli-utils/token/provision"
	"github.com/smallstep/cli-utils/ui"
	"go.step.sm/crypto/jose"
	"go.step.sm/crypto/randutil"
)

// One-time tokens for a JWK provisioner, as upstream's `step ca token` and
// `step ca certificate` (without --token) make them: the provisioner list and
// its encrypted key come from the CA, the key is decrypted locally and signs
// a JWT with the subject, SANs, audience and the root's fingerprint ("sha").

// Token kinds the test client can mint.
const (
	signToken = iota
	revokeToken
)

type tokenRequest struct {
	kind      int
	subject   string
	sans      []string
	caURL     string
	root      string
	notBefore time.Time
	notAfter  time.Time
}

// newJWKToken selects the provisioner (--kid, --provisioner/--issuer) and signs the token.
func newJWKToken(ctx *cli.Context, req tokenRequest) (string, error) {
	audience, err := tokenAudience(req.caURL, req.kind)
	if err != nil {
		return "", err
	}
	list, err := pki.GetProvisioners(req.caURL, req.root)
	if err != nil {
		return "", err
	}
	p, err := selectProvisioner(ctx, list)
	if err != nil {
		return "", err
	}
	jwkProv, ok := p.(*provisioner.JWK)
	if !ok {
		return "", fmt.Errorf("provisioner '%s' of type %s is not supported by the test client (JWK only)", p.GetName(), p.GetType())
	}
	var key *jose.JSONWebKey
	if keyFile := ctx.String("key"); keyFile != "" {
		key, err = readProvisionerKey(ctx, keyFile, jwkProv)
	} else {
		key, err = decryptProvisionerKey(ctx, req, jwkProv)
	}
	if err != nil {
		return "", err
	}

	jti, err := randutil.Hex(64) // unique id: the CA refuses a token used twice
	if err != nil {
		return "", err
	}
	opts := []token.Options{
		token.WithJWTID(jti),
		token.WithKid(jwkProv.Key.KeyID),
		token.WithIssuer(jwkProv.Name),
		token.WithAudience(audience),
	}
	if req.root != "" {
		opts = append(opts, token.WithRootCA(req.root))
	}
	if req.kind == signToken {
		sans := req.sans
		if len(sans) == 0 {
			sans = []string{req.subject}
		}
		opts = append(opts, token.WithSANS(sans))
	}
	if nb, na := req.notBefore, req.notAfter; !nb.IsZero() || !na.IsZero() {
		if nb.IsZero() {
			nb = time.Now()
		}
		if na.IsZero() {
			na = nb.Add(token.DefaultValidity)
		}
		opts = append(opts, token.WithValidity(nb, na))
	}
	tok, err := provision.New(req.subject, opts...)
	if err != nil {
		return "", err
	}
	return tok.SignedString(key.Algorithm, key.Key)
}

// tokenAudience is the CA endpoint the token is good for.
func tokenAudience(caURL string, kind int) (string, error) {
	u, err := url.Parse(caURL)
	if err != nil {
		return "", errors.Wrapf(err, "error parsing %s", caURL)
	}
	path := "/1.0/sign"
	if kind == revokeToken {
		path = "/1.0/revoke"
	}
	u.Scheme = "https"
	return u.ResolveReference(&url.URL{Path: path}).String(), nil
}

// selectProvisioner filters the CA's provisioners like upstream; one left is
// used directly, several need an interactive choice.
func selectProvisioner(ctx *cli.Context, list provisioner.List) (provisioner.Interface, error) {
	var candidates provisioner.List
	for _, p := range list {
		switch p.GetType() {
		case provisioner.TypeJWK, provisioner.TypeOIDC, provisioner.TypeACME, provisioner.TypeSCEP,
			provisioner.TypeK8sSA, provisioner.TypeX5C, provisioner.TypeSSHPOP, provisioner.TypeNebula,
			provisioner.TypeGCP, provisioner.TypeAWS, provisioner.TypeAzure:
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		return nil, errors.New("cannot create a new token: the CA does not have any provisioner configured")
	}
	if kid := ctx.String("kid"); kid != "" {
		candidates = filterProvisioners(candidates, func(p provisioner.Interface) bool {
			j, ok := p.(*provisioner.JWK)
			return ok && j.Key.KeyID == kid
		})
		if len(candidates) == 0 {
			return nil, errs.InvalidFlagValue(ctx, "kid", kid, "")
		}
	}
	if name := ctx.String("provisioner"); name != "" {
		candidates = filterProvisioners(candidates, func(p provisioner.Interface) bool { return p.GetName() == name })
		if len(candidates) == 0 {
			return nil, errs.InvalidFlagValue(ctx, "provisioner", name, "")
		}
	}

	type item struct {
		Name        string
		Provisioner provisioner.Interface
	}
	items := make([]item, 0, len(candidates))
	for _, p := range candidates {
		label := fmt.Sprintf("%s (%s)", p.GetName(), p.GetType())
		if j, ok := p.(*provisioner.JWK); ok {
			label = fmt.Sprintf("%s (%s) [kid: %s]", j.Name, j.GetType(), j.Key.KeyID)
		}
		items = append(items, item{label, p})
	}
	if len(items) == 1 {
		if err := ui.PrintSelected("Provisioner", items[0].Name); err != nil {
			return nil, err
		}
		return items[0].Provisioner, nil
	}
	i, _, err := ui.Select("What provisioner key do you want to use?", items, ui.WithSelectTemplates(ui.NamedSelectTemplates("Provisioner")))
	if err != nil {
		return nil, err
	}
	return items[i].Provisioner, nil
}

func filterProvisioners(list provisioner.List, keep func(provisioner.Interface) bool) provisioner.List {
	var out provisioner.List
	for _, p := range list {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// readProvisionerKey reads --key (a JWK, decrypted with the password file
// when it is encrypted) and checks that it is the provisioner's key.
func readProvisionerKey(ctx *cli.Context, file string, p *provisioner.JWK) (*jose.JSONWebKey, error) {
	opts := []jose.Option{jose.WithPasswordPrompter("Please enter the password to decrypt "+file,
		func(s string) ([]byte, error) { return ui.PromptPassword(s) })}
	for _, f := range []string{"provisioner-password-file", "password-file"} {
		if pf := ctx.String(f); pf != "" {
			opts = append(opts, jose.WithPasswordFile(pf))
			break
		}
	}
	key, err := jose.ReadKey(file, opts...)
	if err != nil {
		return nil, err
	}
	if key.IsPublic() {
		return nil, errors.Errorf("the key in %s is a public key; a private key is needed to sign the token", file)
	}
	want, err := jose.Thumbprint(p.Key)
	if err != nil {
		return nil, err
	}
	public := key.Public()
	got, err := jose.Thumbprint(&public)
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, errors.Errorf("the key in %s is not the key of provisioner '%s'", file, p.Name)
	}
	return key, nil
}

// decryptProvisionerKey fetches the provisioner's encrypted JWK from the CA
// and decrypts it. As upstream, --provisioner-password-file wins over
// --password-file; without either the password is prompted for.
func decryptProvisionerKey(ctx *cli.Context, req tokenRequest, p *provisioner.JWK) (*jose.JSONWebKey, error) {
	var opts []jose.Option
	switch {
	case ctx.String("provisioner-password-file") != "":
		opts = append(opts, jose.WithPasswordFile(ctx.String("provisioner-password-file")))
	case ctx.String("password-file") != "":
		opts = append(opts, jose.WithPasswordFile(ctx.String("password-file")))
	}
	encrypted, err := pki.GetProvisionerKey(req.caURL, req.root, p.Key.KeyID)
	if err != nil {
		return nil, err
	}
	opts = append(opts, jose.WithPasswordPrompter("Please enter the password to decrypt the provisioner key",
		func(s string) ([]byte, error) { return ui.PromptPassword(s) }))
	decrypted, err := jose.Decrypt([]byte(encrypted), opts...)
	if err != nil {
		return nil, err
	}
	key := new(jose.JSONWebKey)
	if err := json.Unmarshal(decrypted, key); err != nil {
		return nil, errors.Wrap(err, "error unmarshaling provisioning key")
	}
	return key, nil
}
