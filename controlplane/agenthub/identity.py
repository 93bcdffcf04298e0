"""Who connects as an agent, and which agents' ids and names that credential may use.

A credential is what the caller proved: the name of its token (when tokens are configured) and,
under mutual TLS, the common name of its client certificate. An agent record is bound to the
credential that registered it (`agents.owner_token`, `agents.owner_certificate`): a Hello under an
id or a name bound to another credential is refused, so an agent token cannot take over, lock out
or answer for another credential's agents.

A binding holds only while it can still be proven: a token name no longer configured, or a
certificate name while mutual TLS is off, binds nothing, and the next credential that connects
under that id takes the record over. So turning tokens or mutual TLS on, renaming a token or
upgrading from before bindings never locks an agent out; without tokens and without mutual TLS
nothing is bound (the embedded demo behaves as before).
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.config import Config

#: longest client certificate common name kept (the column's size); longer ones are refused
MAX_CERTIFICATE_NAME = 255


@dataclass(frozen=True)
class Credential:
    """What a caller proved: its token's name and its client certificate's common name ("" when
    not in use)."""

    token: str = ""
    certificate: str = ""

    def __str__(self) -> str:
        parts = [f"token {self.token}"] if self.token else []
        if self.certificate:
            parts.append(f"certificate CN={self.certificate}")
        return ", ".join(parts) or "no credential"


NOBODY = Credential()


@dataclass(frozen=True)
class Binding:
    """Which credentials can be proven with the current configuration."""

    token_names: frozenset[str]
    certificates: bool  # mutual TLS: every caller presents a certificate our client CA signed

    @classmethod
    def of(cls, config: Config) -> Binding:
        return cls(frozenset(t.name for t in config.tokens), bool(config.tls.client_ca_file))

    def credential(self, token_name: str, certificate_name: str) -> Credential:
        """The credential of a caller: only what this configuration checks counts."""
        return Credential(
            token_name if self.token_names else "",
            certificate_name if self.certificates else "",
        )

    def may_act_for(self, caller: Credential, owner: Credential) -> bool:
        """May `caller` use an agent id or name registered by `owner`? Every part of the owner's
        credential that can still be proven must be the caller's too."""
        if owner.token in self.token_names and owner.token != caller.token:
            return False
        return not (self.certificates and owner.certificate and owner.certificate != caller.certificate)
