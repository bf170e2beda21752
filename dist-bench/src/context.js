/** Reads `Bearer <token>` from an Authorization header value. */
export function bearerToken(header) {
    if (!header)
        return null;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match ? match[1] : null;
}
export async function createContext(input) {
    const token = bearerToken(input.authorization);
    const principal = token ? await input.services.tokens.authenticate(token) : null;
    return {
        principal,
        rejectedCredential: input.authorization != null && input.authorization !== '' && principal === null,
        services: input.services,
        requestId: input.requestId,
        logger: input.logger.child({ requestId: input.requestId, actor: principal ? `${principal.userName}/${principal.tokenName}` : undefined }),
    };
}
