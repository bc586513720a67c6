// Submit order documents to Ordergate over gRPC from Node.js, and read a refusal's details.
//
//   ORDERGATE_TARGET=127.0.0.1:50051 KEY=og_... node submit.mjs order.xml [more.xml ...]
//
// It loads the contract from the repository's protos/ at run time (@grpc/proto-loader); the
// google.rpc protos the errors use are there too (protos/google/rpc), and decode the
// grpc-status-details-bin trailer into ErrorInfo (the stable reason) and BadRequest (the
// fields to fix).
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const protos = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../protos");

const definition = protoLoader.loadSync("ordergate/v1/order_service.proto", {
  includeDirs: [protos],
  enums: String, // enum values by name: "ORDER_STATE_ACCEPTED"
  longs: String,
  defaults: true,
});
const { ordergate } = grpc.loadPackageDefinition(definition);
const orders = new ordergate.v1.OrderService(
  process.env.ORDERGATE_TARGET ?? "127.0.0.1:50051",
  grpc.credentials.createInsecure(), // grpc.credentials.createSsl() behind TLS
);

// google.rpc.Status and its details, from the protos shipped with the contract.
const rpc = new protobuf.Root();
rpc.resolvePath = (_origin, target) =>
  target.startsWith("google/protobuf/") ? target : path.join(protos, target);
rpc.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
rpc.resolveAll();
const Status = rpc.lookupType("google.rpc.Status");

function details(error) {
  const [bytes] = error.metadata?.get("grpc-status-details-bin") ?? [];
  if (!bytes) return [];
  return Status.decode(bytes).details.map((any) => {
    const type = rpc.lookupType(any.type_url.split("/").pop());
    return { "@type": type.fullName.slice(1), ...type.toObject(type.decode(any.value)) };
  });
}

function submit(file) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${process.env.KEY}`);
  const request = { requestId: randomUUID(), orderXml: readFileSync(file) };
  return new Promise((resolve) => {
    orders.SubmitOrder(request, metadata, { deadline: Date.now() + 30_000 }, (error, reply) => {
      if (error) {
        const found = details(error);
        const info = found.find((d) => d["@type"] === "google.rpc.ErrorInfo");
        const bad = found.find((d) => d["@type"] === "google.rpc.BadRequest");
        console.log(`${file}: refused ${grpc.status[error.code]} ${info?.reason ?? ""}`);
        for (const v of bad?.fieldViolations ?? []) console.log(`  ${v.field}: ${v.description}`);
        resolve(3);
        return;
      }
      const order = reply.order;
      const reasons = order.holdReasons.map((r) => ` ${r.code} (${r.message})`).join("");
      console.log(`${file}: ${order.clientOrderId} ${order.state}${reasons}`);
      resolve(order.state === "ORDER_STATE_ACCEPTED" ? 0 : 1);
    });
  });
}

let worst = 0;
for (const file of process.argv.slice(2)) worst = Math.max(worst, await submit(file));
orders.close();
process.exit(worst);
