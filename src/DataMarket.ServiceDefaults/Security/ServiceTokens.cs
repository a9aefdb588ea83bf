using System.Security.Claims;
using System.Security.Cryptography;

using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace DataMarket.ServiceDefaults.Security;

/// <summary>Roles an account holds; each is also the name of the authorisation policy that requires it.</summary>
public static class Roles
{
    public const string Seller = "seller";
    public const string Buyer = "buyer";
    public const string Operator = "operator";

    public static readonly IReadOnlyList<string> All = [Seller, Buyer, Operator];
}

/// <summary>
/// Bound from <c>Auth</c>. The gateway signs a short-lived token per forwarded request with <see cref="SigningKey"/>;
/// every service validates it with the same key. Nothing else names the caller.
/// </summary>
public sealed class ServiceAuthOptions
{
    public const string SectionName = "Auth";
    public const string Issuer = "datamarket-gateway";
    public const string Audience = "datamarket-services";
    public const int MinimumKeyBytes = 32;

    /// <summary>Base64 of at least 32 random bytes, shared by the gateway and the services.</summary>
    public string? SigningKey { get; set; }

    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromMinutes(2);

    public SymmetricSecurityKey Key()
    {
        if (string.IsNullOrWhiteSpace(SigningKey))
        {
            throw new InvalidOperationException(
                "Auth:SigningKey is not set: the gateway and every service need the same base64 key of at least 32 bytes (Auth__SigningKey)");
        }

        var bytes = Convert.FromBase64String(SigningKey);
        if (bytes.Length < MinimumKeyBytes)
        {
            throw new InvalidOperationException($"Auth:SigningKey must hold at least {MinimumKeyBytes} bytes, it holds {bytes.Length}");
        }

        return new SymmetricSecurityKey(bytes);
    }

    public static string NewSigningKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(MinimumKeyBytes));
}

/// <summary>Mints the token the gateway forwards: who (subject), which role, and for a couple of minutes only.</summary>
public sealed class ServiceTokenIssuer(ServiceAuthOptions options, TimeProvider time)
{
    private readonly JsonWebTokenHandler _handler = new();
    private readonly SigningCredentials _credentials = new(options.Key(), SecurityAlgorithms.HmacSha256);

    public string Issue(string accountId, string role, string name)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = ServiceAuthOptions.Issuer,
            Audience = ServiceAuthOptions.Audience,
            Subject = new ClaimsIdentity([new Claim("sub", accountId), new Claim("role", role), new Claim("name", name)]),
            IssuedAt = now,
            NotBefore = now,
            Expires = now + options.TokenLifetime,
            SigningCredentials = _credentials,
        });
    }
}

public static class ClaimsPrincipalExtensions
{
    /// <summary>The account id the gateway vouched for, or an empty string for an anonymous caller.</summary>
    public static string AccountId(this ClaimsPrincipal user) =>
        user.FindFirstValue("sub") ?? user.FindFirstValue(ClaimTypes.NameIdentifier) ?? string.Empty;
}

