#!/usr/bin/env bash
# make deploy-web: publish web/dist to the stack's hosting bucket behind CloudFront.
#
#   STACK_NAME=parley-dev bash web/deploy.sh      (after `sam deploy` with WebHosting=enabled)
#
# 1. reads the stack's outputs (WebBucketName, WebDistributionId, WebUrl, ApiUrl, WebSocketUrl,
#    ApiKeyId, and for Cognito sign-in UserPoolClientId and UserPoolDomain);
# 2. writes config.json for that stack - the same build runs against any stack;
# 3. uploads the hashed assets first (cached for a year; old ones are kept, for pages still open),
#    then the other files (deleting those the build no longer has), then config.json and, last,
#    index.html (never cached), so no page ever points at an asset that is not there yet;
# 4. invalidates CloudFront's copies of the uncached files.
# Needs the AWS CLI v2 with credentials for the stack's account, and python3.
set -euo pipefail
cd "$(dirname "$0")"
: "${STACK_NAME:?set STACK_NAME (e.g. parley-dev)}"
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"

outputs="$(aws cloudformation describe-stacks --region "$REGION" --stack-name "$STACK_NAME" \
  --query 'Stacks[0].Outputs' --output json)"
output() { python3 -c 'import json,sys; print(next((o["OutputValue"] for o in json.load(sys.stdin) if o["OutputKey"]==sys.argv[1]), ""))' "$1" <<<"$outputs"; }

bucket="$(output WebBucketName)"
distribution="$(output WebDistributionId)"
if [[ -z "$bucket" || -z "$distribution" ]]; then
  echo "The stack $STACK_NAME has no web hosting: deploy it with WebHosting=enabled first." >&2
  exit 1
fi
api_key=""
api_key_id="$(output ApiKeyId)"
if [[ -n "$api_key_id" ]]; then
  api_key="$(aws apigateway get-api-key --region "$REGION" --api-key "$api_key_id" --include-value \
    --query value --output text)"
fi

staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
cp -R dist/. "$staging/"
API_URL="$(output ApiUrl)" WS_URL="$(output WebSocketUrl)" API_KEY="$api_key" \
CLIENT_ID="$(output UserPoolClientId)" DOMAIN="$(output UserPoolDomain)" \
python3 - "$staging/config.json" <<'PY'
import json, os, sys
auth = {"mode": "device"}
if os.environ["CLIENT_ID"] and os.environ["DOMAIN"]:
    auth = {"mode": "cognito", "domain": os.environ["DOMAIN"], "clientId": os.environ["CLIENT_ID"],
            "scopes": ["openid", "email"]}
config = {"apiUrl": os.environ["API_URL"].rstrip("/"), "webSocketUrl": os.environ["WS_URL"], "auth": auth}
if os.environ["API_KEY"]:
    config["apiKey"] = os.environ["API_KEY"]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)
print(f"config.json: {json.dumps(config | {'apiKey': '…'} if 'apiKey' in config else config)}")
PY

immutable="public, max-age=31536000, immutable"
no_cache="no-cache, no-store, must-revalidate"
aws s3 sync "$staging/assets" "s3://$bucket/assets" --region "$REGION" --exclude "*.map" --cache-control "$immutable"
aws s3 sync "$staging" "s3://$bucket" --region "$REGION" --delete --exclude "assets/*" --exclude "index.html" \
  --exclude "config.json" --cache-control "public, max-age=3600"
aws s3 cp "$staging/config.json" "s3://$bucket/config.json" --region "$REGION" \
  --cache-control "$no_cache" --content-type application/json
aws s3 cp "$staging/index.html" "s3://$bucket/index.html" --region "$REGION" \
  --cache-control "$no_cache" --content-type "text/html; charset=utf-8"

aws cloudfront create-invalidation --distribution-id "$distribution" \
  --paths "/" "/index.html" "/config.json" "/manifest.webmanifest" --query 'Invalidation.Id' --output text
echo "Published: $(output WebUrl)"
