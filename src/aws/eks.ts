/**
 * @module aws/eks
 * The EKS Pod Identity association of a service account (ListPodIdentityAssociations, then
 * DescribePodIdentityAssociation for its role), through the SDK's EKS client, built by the client
 * factory and loaded on first use: only `doctor` imports this module. AWS_ENDPOINT_URL_EKS, else
 * AWS_ENDPOINT_URL, points it elsewhere, by the SDK's own environment handling.
 */
import type { EKSClient } from '@aws-sdk/client-eks';
import type { AwsClientFactory, Sender } from './clients.js';
import type { AwsCredentials } from './call-context.js';
import { doctorCall } from './doctor-call.js';

async function eks(clients: AwsClientFactory, region: string, creds: AwsCredentials): Promise<Sender<EKSClient>> {
  return clients.sdkClient('eks', region, creds, async (config) => {
    const { EKSClient } = await import('@aws-sdk/client-eks');
    return new EKSClient(config);
  });
}

/**
 * The role of the Pod Identity association of NS/SA in the cluster, or undefined when there is
 * none. Throws DoctorCallError (`ResourceNotFoundException` when the region has no such cluster).
 */
export async function podIdentityRole(
  clients: AwsClientFactory,
  cluster: string,
  region: string,
  namespace: string,
  serviceAccount: string,
  creds: AwsCredentials,
  signal: AbortSignal,
): Promise<{ associationId: string; roleArn: string } | undefined> {
  const { ListPodIdentityAssociationsCommand, DescribePodIdentityAssociationCommand } =
    await import('@aws-sdk/client-eks');
  const client = await eks(clients, region, creds);
  // One association at most per service account: EKS refuses a second one for the same NS/SA.
  const list = await doctorCall('EKS', 'ListPodIdentityAssociations', region, () =>
    client.send(new ListPodIdentityAssociationsCommand({ clusterName: cluster, namespace, serviceAccount }), {
      abortSignal: signal,
    }),
  );
  const id = list.associations?.[0]?.associationId;
  if (id === undefined) return undefined;
  const one = await doctorCall('EKS', 'DescribePodIdentityAssociation', region, () =>
    client.send(new DescribePodIdentityAssociationCommand({ clusterName: cluster, associationId: id }), {
      abortSignal: signal,
    }),
  );
  return { associationId: id, roleArn: one.association?.roleArn ?? '' };
}
