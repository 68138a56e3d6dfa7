// `tenant me` the way a CI script does it with Qlik's @qlik/api (npm), in Node.
// Run by the benchmark from its own throwaway npm project, never by the project. Reads QLIK_SERVER,
// QLIK_CLIENT_ID and QLIK_CLIENT_SECRET; the test CA comes in through NODE_EXTRA_CA_CERTS.
// The two sub-modules are imported directly: the package's leanest documented way in.
import { getMyTenant } from "@qlik/api/tenants";

const hostConfig = {
  authType: "oauth2",
  host: process.env.QLIK_SERVER,
  clientId: process.env.QLIK_CLIENT_ID,
  clientSecret: process.env.QLIK_CLIENT_SECRET,
};

// /api/v1/tenants/me answers 302; fetch follows it like on the real service.
const { data } = await getMyTenant({ hostConfig });
process.stdout.write(JSON.stringify(data) + "\n");
