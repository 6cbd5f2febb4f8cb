"""The authorizer's token settings (collab/auth/config.py) and access to the HS256 secret.

- `jwks`: JWKS_URL, JWT_ISSUER, JWT_AUDIENCE, or FIREBASE_PROJECT_ID for Firebase's.
- `hs256`: the secret stays out of the template and the environment; the function gets
  the name of an SSM SecureString (jwtSecretParameter) or the ARN of a Secrets Manager
  secret (jwtSecretArn) and read access to that one resource. With neither, the stack
  generates a secret in Secrets Manager (its ARN is an output), so a dev stage deploys
  with no setup; whoever issues tokens reads it from there.
"""

from __future__ import annotations

from aws_cdk import CfnOutput
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from collab import settings
from infra.config import StageConfig
from infra.removal import removal_policy


class JwtSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.generated: secretsmanager.Secret | None = None
        self.parameter: ssm.IStringParameter | None = None
        self.secret_arn: str | None = None
        if config.authMode != "hs256":
            return
        if config.jwtSecretParameter:
            self.parameter = ssm.StringParameter.from_secure_string_parameter_attributes(
                self, "Parameter", parameter_name=config.jwtSecretParameter
            )
        elif config.jwtSecretArn:
            self.secret_arn = config.jwtSecretArn
        else:
            # No fixed name: a deleted secret keeps its name for its recovery window, which
            # would block redeploying the stage.
            self.generated = secretsmanager.Secret(
                self,
                "Generated",
                description=f"{config.prefix}: HS256 key the authorizer verifies tokens with",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=64, exclude_punctuation=True
                ),
                removal_policy=removal_policy(config),
            )
            self.secret_arn = self.generated.secret_arn
            CfnOutput(
                scope, "JwtSecretArn", value=self.secret_arn, description="HS256 key tokens are signed with"
            )

    def env(self) -> dict[str, str]:
        config = self.config
        values = {
            settings.AUTH_MODE: config.authMode,
            settings.JWKS_URL: config.jwksUrl,
            settings.JWT_ISSUER: config.jwtIssuer,
            settings.JWT_AUDIENCE: config.jwtAudience,
            settings.FIREBASE_PROJECT_ID: config.firebaseProjectId,
            settings.JWT_SECRET_PARAMETER: config.jwtSecretParameter,
            settings.JWT_SECRET_ARN: self.secret_arn,
        }
        if config.authMode == "jwks":
            values[settings.JWT_SECRET_PARAMETER] = values[settings.JWT_SECRET_ARN] = None
        return {name: value for name, value in values.items() if value}

    def grant_read(self, grantee: iam.IGrantable) -> None:
        if self.parameter is not None:
            self.parameter.grant_read(grantee)
        elif self.generated is not None:
            self.generated.grant_read(grantee)
        elif self.secret_arn is not None:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[self.secret_arn])
            )
