// Runs under `qlikm2m exec`: @qlik/api (npm) with the access token qlikm2m put in the environment.
// Reads QLIK_SERVER, QLIK_ACCESS_TOKEN and QLIK_TENANT_ID only: no client secret is at hand.
// The test CA comes in through NODE_EXTRA_CA_CERTS. Prints one JSON line: the tenant and the user.
import { getMyTenant } from "@qlik/api/tenants";
import { getMyUser } from "@qlik/api/users";

const hostConfig = {
  // @qlik/api's Node auth modules either mint themselves (oauth2 needs the client secret) or send
  // a given bearer as it is: the "apikey" module sends `Authorization: Bearer <apiKey>`, which is
  // exactly how an OAuth access token is presented.
  authType: "apikey",
  host: process.env.QLIK_SERVER,
  apiKey: process.env.QLIK_ACCESS_TOKEN,
};

// /tenants/me answers 302 and /users/me 301; fetch follows them, as on the real service.
const tenant = await getMyTenant({ hostConfig });
const user = await getMyUser({ hostConfig });
process.stdout.write(
  JSON.stringify({
    tenantId: tenant.data.id,
    expectedTenantId: process.env.QLIK_TENANT_ID,
    clientId: user.data.clientId,
    hasSecret: "QLIK_CLIENT_SECRET" in process.env,
  }) + "\n",
);
