/**
 * A child process that publishes by WHIP (OBS-shaped, no candidates in the offer) and then keeps sending media
 * until it is killed: the test SIGKILLs it so the peer disappears without DELETE, DTLS close_notify or ICE goodbye.
 * Usage: node --import tsx vanishing-publisher.ts <endpoint-url>; prints "published <location>" once connected.
 */
import { ObsLikePublisher } from './obs.js';

const url = process.argv[2];
if (!url) process.exit(2);
const obs = new ObsLikePublisher();
const res = await obs.publish(url);
if (res.status !== 201) {
  process.stdout.write(`refused ${res.status}\n`);
  process.exit(1);
}
await obs.peer.connected(10_000);
obs.startMedia();
process.stdout.write(`published ${obs.location}\n`);
