using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace SlimMail.Tests.Core.Harness;

/// <summary>Self-signed certificates written as PEM files, as an operator would have them.</summary>
internal static class TestCertificates
{
    public static (string CertificateFile, string KeyFile) Write(string directory, string commonName = "localhost", bool ecdsa = false)
    {
        string certificateFile = Path.Combine(directory, "cert.pem");
        string keyFile = Path.Combine(directory, "key.pem");
        AsymmetricAlgorithm key = ecdsa ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : RSA.Create(2048);
        using (key)
        {
            CertificateRequest request = key is ECDsa ec
                ? new CertificateRequest("CN=" + commonName, ec, HashAlgorithmName.SHA256)
                : new CertificateRequest("CN=" + commonName, (RSA)key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName(commonName);
            request.CertificateExtensions.Add(san.Build());
            using X509Certificate2 certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            File.WriteAllText(certificateFile, certificate.ExportCertificatePem());
            File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        }

        return (certificateFile, keyFile);
    }
}
